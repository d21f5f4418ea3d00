"""Snakemake adapter for the tokenize rule (thin: the logic lives in the morphcpt package)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821

from morphcpt.stage_io import run_stage  # noqa: E402


def main(smk):
    from morphcpt.shards import run_tokenize_stage

    run_tokenize_stage(smk)


run_stage(snakemake, main)  # noqa: F821
