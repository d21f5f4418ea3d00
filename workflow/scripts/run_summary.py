"""Snakemake adapter for the run_summary rule (thin: the logic lives in morphcpt.reporting)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821

from morphcpt.reporting.run_summary import run_summary_stage  # noqa: E402
from morphcpt.stage_io import run_stage  # noqa: E402

run_stage(snakemake, run_summary_stage)  # noqa: F821
