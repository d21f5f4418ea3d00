"""Snakemake adapter for the fetch_benchmark rule (thin: the logic lives in morphcpt.evaluation.sources)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821

from morphcpt.evaluation.sources import fetch_stage  # noqa: E402
from morphcpt.stage_io import run_stage  # noqa: E402

run_stage(snakemake, fetch_stage)  # noqa: F821
