"""Snakemake adapter for the training_curves rule (thin: the logic lives in morphcpt.reporting)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821

from morphcpt.reporting.training_curves import training_curves_stage  # noqa: E402
from morphcpt.stage_io import run_stage  # noqa: E402

run_stage(snakemake, training_curves_stage)  # noqa: F821
