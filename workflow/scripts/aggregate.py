"""Snakemake adapter for the aggregate rule (thin: the logic lives in morphcpt.evaluation.report)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821

from morphcpt.evaluation.report import aggregate_stage  # noqa: E402
from morphcpt.stage_io import run_stage  # noqa: E402

run_stage(snakemake, aggregate_stage)  # noqa: F821
