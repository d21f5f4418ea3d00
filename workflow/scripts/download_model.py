"""Snakemake adapter for the download_model rule (thin: the logic lives in the morphcpt package)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821

from morphcpt.stage_io import run_stage  # noqa: E402


def main(smk):
    from morphcpt.models.download import download_model

    path = download_model(smk.params.family, Path(smk.output.manifest), seed=smk.params.seed,
                          name=smk.wildcards.family)
    print(f"download_model: wrote {path}")


run_stage(snakemake, main)  # noqa: F821
