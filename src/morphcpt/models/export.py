"""The export stage: the checkpoint after step S of a (family, mode) run -> HF, with its gates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from morphcpt.models.nemo_io import export_step
from morphcpt.models.checkpoints import checkpoint_at_step


def export_checkpoint(checkpoint_dir: Path, step: int, global_batch_size: int, out_dir: Path, base_hf_dir: Path,
                      thresholds: dict[str, float], report_path: Path) -> dict[str, Any]:
    checkpoint = checkpoint_at_step(Path(checkpoint_dir), int(step), int(global_batch_size))
    report = export_step(checkpoint, Path(out_dir), Path(base_hf_dir), thresholds, Path(report_path))
    return report
