"""Snakemake adapter for the scores_page and comparison_page rules (thin: the logic lives in morphcpt.reporting)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821

from morphcpt.reporting.html_page import markdown_pages_stage  # noqa: E402
from morphcpt.stage_io import run_stage  # noqa: E402

run_stage(snakemake, markdown_pages_stage)  # noqa: F821
