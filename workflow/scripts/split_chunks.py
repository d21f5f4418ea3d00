"""Snakemake adapter for the split_chunks rule (thin: the logic lives in the morphcpt package)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821

from morphcpt.stage_io import run_stage  # noqa: E402


def main(smk):
    from morphcpt.corpus import split_chunks

    split_chunks(smk.input.manifest, list(smk.output.chunks), smk.output.manifest, on_bad_line=smk.params.on_bad_line)


run_stage(snakemake, main)  # noqa: F821
