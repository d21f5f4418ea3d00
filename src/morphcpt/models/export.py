"""The export stage: the checkpoint after step S of a (family, mode) run -> HF, with its gates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from morphcpt.models.nemo_io import export_step
from morphcpt.models.checkpoints import checkpoint_at_step, list_checkpoints, missing_checkpoint_message


def export_checkpoint(checkpoint_dir: Path, step: int, global_batch_size: int, out_dir: Path, base_hf_dir: Path,
                      thresholds: dict[str, float], report_path: Path) -> dict[str, Any]:
    checkpoint = checkpoint_at_step(Path(checkpoint_dir), int(step), int(global_batch_size))
    report = export_step(checkpoint, Path(out_dir), Path(base_hf_dir), thresholds, Path(report_path))
    return report


def deleted_checkpoints(config: dict[str, Any], layout: Any) -> list[str]:
    """One line per checkpoint of `export.steps` missing from a finished run (its train.done
    exists). Checkpoints are not declared outputs, so Snakemake does not notice a deleted one:
    while the export exists nothing reruns (a forced re-export would fail), and an export still to
    make fails. The Snakefile prints these lines as warnings, so a dry run shows them."""
    lines = []
    gbs = int(config["training"]["global_batch_size"])
    for family in config["families"]:
        for mode in config["modes"]:
            if not Path(layout.train_done(family, mode)).is_file():
                continue
            checkpoint_dir = Path(layout.p(family, mode, "train", "checkpoints"))
            found = list_checkpoints(checkpoint_dir, gbs)
            for step in config["export"]["steps"]:
                if step in found:
                    continue
                exported = Path(layout.export_parity(family, mode, step)).is_file()
                state = ("its export exists, so nothing reruns, but it cannot be exported again" if exported
                         else "its export will fail")
                lines.append(f"{missing_checkpoint_message(checkpoint_dir, step, found)}; {state}")
    return lines
