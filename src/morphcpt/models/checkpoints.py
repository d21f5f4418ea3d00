"""Training checkpoints: how NeMo names them, which are complete, which are kept, and how they are
written (each once: no `-last` copy; optimizer state only where a resume can need it).

NeMo names a checkpoint "step={global_step - 1}-consumed_samples={n}": the optimizer steps it
contains are consumed_samples / global_batch_size, which is what export.steps counts. A checkpoint
whose save did not finish has a "<name>-unfinished" marker file next to it.

Kept checkpoints: one every `checkpoint_every` steps (with optimizer state, so a preempted run can
resume from it) and the final one after `max_steps` (weights only: nothing resumes from a finished
run). A checkpoint saved on SIGTERM between those is a resume point only: it is deleted when the run
finishes, so what stays on disk is what `morphcpt plan` counts (`estimates.checkpoint_bytes`).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from morphcpt.errors import MorphcptError

# The worker's exit code after a save on SIGTERM: the driver reports "preempted, rerun resumes".
PREEMPTED_EXIT_CODE = 75  # EX_TEMPFAIL
UNFINISHED_SUFFIX = "-unfinished"  # NeMo's ModelCheckpoint.UNFINISHED_CHECKPOINT_SUFFIX
_CONSUMED_RE = re.compile(r"consumed_samples=(\d+)(?:\.0)?$")


def steps_done(path: Path, global_batch_size: int) -> int | None:
    """Optimizer steps a checkpoint folder holds, from its name; None for other names."""
    m = _CONSUMED_RE.search(Path(path).name)
    return int(m.group(1)) // global_batch_size if m else None


def is_unfinished(path: Path) -> bool:
    return Path(str(path) + UNFINISHED_SUFFIX).exists()


def list_checkpoints(checkpoint_dir: Path, global_batch_size: int) -> dict[int, Path]:
    """Complete checkpoints by optimizer steps done."""
    found: dict[int, Path] = {}
    if not Path(checkpoint_dir).is_dir():
        return found
    for p in sorted(Path(checkpoint_dir).iterdir()):
        steps = steps_done(p, global_batch_size)
        if p.is_dir() and steps is not None and not is_unfinished(p):
            found[steps] = p
    return dict(sorted(found.items()))


def latest_checkpoint(checkpoint_dir: Path, global_batch_size: int) -> tuple[int, Path] | None:
    found = list_checkpoints(checkpoint_dir, global_batch_size)
    return max(found.items()) if found else None


def checkpoint_at_step(checkpoint_dir: Path, step: int, global_batch_size: int) -> Path:
    """The complete checkpoint saved after `step` optimizer steps."""
    found = list_checkpoints(checkpoint_dir, global_batch_size)
    if step not in found:
        raise MorphcptError(missing_checkpoint_message(Path(checkpoint_dir), step, found))
    return found[step]


def missing_checkpoint_message(checkpoint_dir: Path, step: int, found: dict[int, Path]) -> str:
    """Why the checkpoint after `step` is not there, and how to recreate it. The config allows only
    steps a training run keeps, so after a finished run it was deleted: the train job's sentinel
    still says done, and only a retraining from the checkpoint before it writes it again."""
    train_dir = checkpoint_dir.parent
    before = [s for s in found if s < step]
    later = [found[s].name for s in found if s > step]
    if before:
        how = (f"delete {', '.join(later) + ' and ' if later else ''}{train_dir / 'train.done'}, then rerun: "
               f"training resumes from the checkpoint after step {before[-1]} and writes step {step} again")
    else:
        how = f"delete {train_dir} and rerun: training starts again from the imported weights"
    return (f"{checkpoint_dir}: no checkpoint after step {step} (present: steps {sorted(found) or 'none'}); it was "
            f"deleted or never written. To recreate it, {how} (this run's later exports and evaluations rerun too)")


def kept_steps(max_steps: int, checkpoint_every: int) -> list[int]:
    """Steps after which a checkpoint is kept: every checkpoint_every-th, and max_steps."""
    return sorted(set(range(checkpoint_every, max_steps + 1, checkpoint_every)) | {max_steps})


def remove_unfinished(checkpoint_dir: Path) -> list[str]:
    """Delete checkpoints whose save never finished (a kill during the save) and their markers,
    so a relaunch neither resumes from nor trips over them. Returns the names removed."""
    removed = []
    d = Path(checkpoint_dir)
    if not d.is_dir():
        return removed
    for marker in sorted(d.glob("*" + UNFINISHED_SUFFIX)):
        ckpt = Path(str(marker)[: -len(UNFINISHED_SUFFIX)])
        if ckpt.is_dir():
            shutil.rmtree(ckpt)
        elif ckpt.exists():
            ckpt.unlink()
        marker.unlink()
        removed.append(ckpt.name)
    return removed


def remove_resume_points(checkpoint_dir: Path, global_batch_size: int, max_steps: int,
                         checkpoint_every: int) -> list[str]:
    """After a finished run: delete checkpoints saved only to resume (on SIGTERM) and not kept."""
    keep = set(kept_steps(max_steps, checkpoint_every))
    removed = []
    for steps, path in list_checkpoints(checkpoint_dir, global_batch_size).items():
        if steps not in keep:
            shutil.rmtree(path)
            removed.append(path.name)
    return removed


def checkpoint_callback(spec: dict[str, Any]):
    """NeMo's ModelCheckpoint writing each kept checkpoint once: no `-last` copy (save_last=False),
    and the one at max_steps without optimizer state (save_optim_on_train_end=False).
    `morphcpt.models.preemption.FinalAndPreemptionCheckpoint` adds the final one when max_steps is
    not a multiple of checkpoint_every, and the save on SIGTERM."""
    from nemo import lightning as nl

    return nl.ModelCheckpoint(
        dirpath=str(spec["checkpoint_dir"]), filename="{step}-{consumed_samples}",
        every_n_train_steps=spec["training"]["checkpoint_every"], save_top_k=-1, save_last=False,
        monitor="reduced_train_loss", save_optim_on_train_end=False, always_save_context=True,
    )
