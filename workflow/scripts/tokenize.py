"""Snakemake adapter for the tokenize rule (thin: the logic lives in the morphcpt package)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821

from morphcpt.stage_io import not_implemented  # noqa: E402

not_implemented(snakemake, "tokenize")  # noqa: F821
