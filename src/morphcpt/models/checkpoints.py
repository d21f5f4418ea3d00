"""Training checkpoints: how NeMo names them, which are complete, which are kept, and how they are
written (each once: no `-last` copy; optimizer state only where a resume can need it).

NeMo names a checkpoint "step={global_step - 1}-consumed_samples={n}": the optimizer steps it
contains are consumed_samples / global_batch_size, which is what export.steps counts. A checkpoint
whose save did not finish has a "<name>-unfinished" marker file next to it.

Kept checkpoints: one every `checkpoint_every` steps (saved with optimizer state, so a preempted run
can resume from it) and the final one after `max_steps` (weights only: nothing resumes from a
finished run). Only the newest complete checkpoint needs its optimizer state: the driver prunes it
from every older one (`prune_older_optimizer_states`). A checkpoint saved on SIGTERM between those
is a resume point only: it is deleted when the run finishes, so what stays on disk (weights only)
is what `morphcpt plan` counts (`estimates.checkpoint_bytes`).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from morphcpt.errors import MorphcptError
from morphcpt.fileio import NoSpaceError, free_bytes, removed_on_failure, tree_bytes

# The worker's exit code after a save on SIGTERM: the driver reports "preempted, rerun resumes".
PREEMPTED_EXIT_CODE = 75  # EX_TEMPFAIL
# The worker's exit code when a full disk stopped it (a save, usually): the driver reports NoSpaceError.
NO_SPACE_EXIT_CODE = 74  # EX_IOERR
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


def require_space_for_a_save(checkpoint_dir: Path, needed_bytes: float | None) -> None:
    """Before training: stop (nothing written) when the checkpoints' filesystem has less free space
    than one checkpoint with optimizer state needs; the run would fail at its first save, after
    GPU hours (docs/design.md §6)."""
    free = free_bytes(checkpoint_dir)
    if needed_bytes and free is not None and free < needed_bytes:
        raise NoSpaceError(checkpoint_dir, needed_bytes)


def failed_save_cleanup(checkpoint_dir: Path, exit_code: int, needed_bytes: float | None) -> list[str]:
    """After a worker failed: remove the checkpoints whose save it cut off (their `-unfinished`
    marker is left; a resume never picks them, and now nothing half-written stays on disk) and
    raise NoSpaceError when a full disk stopped it: the worker said so (NO_SPACE_EXIT_CODE; under
    torchrun only the log has it), or a save was cut off while less than `needed_bytes` was free.
    Returns the names removed."""
    free = free_bytes(checkpoint_dir)  # before the clean-up frees the cut-off save's space
    removed = remove_unfinished(checkpoint_dir)
    full = free is not None and needed_bytes is not None and free < needed_bytes
    if exit_code == NO_SPACE_EXIT_CODE or (removed and full):
        raise NoSpaceError(Path(checkpoint_dir) / removed[0] if removed else checkpoint_dir, needed_bytes)
    return removed


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


OPTIMIZER_PREFIX = "optimizer."  # keys of the optimizer state in a torch_dist checkpoint
# common.pt entries a weights-only checkpoint has (what NeMo writes with save_weights_only)
WEIGHTS_ONLY_COMMON = ("epoch", "global_step", "pytorch-lightning_version", "state_dict", "loops",
                       "PreTrainingDataModule", "content_metadata")
_PRUNING, _DONE = "weights.pruning", ".complete"


def has_optimizer_state(path: Path) -> bool:
    from torch.distributed.checkpoint import FileSystemReader

    keys = FileSystemReader(str(Path(path) / "weights")).read_metadata().state_dict_metadata
    return any(k.startswith(OPTIMIZER_PREFIX) for k in keys)


# fp32 optimizer state per parameter in a checkpoint saved to resume from, by training.precision:
# bf16-mixed: fp32 main params + two Adam moments; 32: the two moments (the weights are the main params).
OPTIMIZER_BYTES_PER_PARAM = {"bf16-mixed": 12, "32": 8}


def _model_tensor_metadata(path: Path) -> list[Any]:
    """Metadata of the model tensors (not the optimizer state) of a torch_dist checkpoint folder."""
    from torch.distributed.checkpoint import FileSystemReader
    from torch.distributed.checkpoint.metadata import TensorStorageMetadata

    metadata = FileSystemReader(str(Path(path) / "weights")).read_metadata().state_dict_metadata
    return [m for k, m in metadata.items() if not k.startswith(OPTIMIZER_PREFIX) and isinstance(m, TensorStorageMetadata)]


def checkpoint_weight_bytes(path: Path) -> int:
    """Bytes of a NeMo checkpoint's model tensors in their stored dtype (what an HF export of it holds)."""
    import torch

    return sum(m.size.numel() * torch.empty(0, dtype=m.properties.dtype).element_size()
               for m in _model_tensor_metadata(path))


def checkpoint_save_bytes(nemo_dir: Path, precision: str) -> int:
    """About what one training checkpoint with optimizer state takes (the largest save of a run):
    the parameters of the imported model `nemo_dir` at the precision's weight and optimizer bytes
    per parameter (`estimates.CHECKPOINT_WEIGHT_BYTES`), plus its context/ folder."""
    from morphcpt.estimates import CHECKPOINT_WEIGHT_BYTES

    params = sum(m.size.numel() for m in _model_tensor_metadata(nemo_dir))
    per_param = CHECKPOINT_WEIGHT_BYTES[precision] + OPTIMIZER_BYTES_PER_PARAM[precision]
    return params * per_param + tree_bytes(Path(nemo_dir) / "context")


def prune_optimizer_state(path: Path) -> bool:
    """Rewrite the checkpoint folder `path` without its optimizer state (what NeMo writes with
    save_weights_only: the model's tensors and a common.pt without optimizer and scheduler), so
    it can still be exported but not resumed. The new weights/ is written next to the old one and
    swapped in by renames; an interrupted prune is finished or discarded by the next call.
    Returns whether anything was pruned."""
    import torch
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint import FileSystemReader, FileSystemWriter
    from torch.distributed.checkpoint.metadata import TensorStorageMetadata

    path = Path(path)
    weights, new, old = path / "weights", path / _PRUNING, path / "weights.with-optimizer"
    if (new / _DONE).is_file() and not weights.exists():  # stopped between the two renames
        new.rename(weights)
    shutil.rmtree(old, ignore_errors=True)
    shutil.rmtree(new, ignore_errors=True)
    (weights / _DONE).unlink(missing_ok=True)
    metadata = FileSystemReader(str(weights)).read_metadata().state_dict_metadata
    keys = [k for k in metadata if not k.startswith(OPTIMIZER_PREFIX)]
    if len(keys) == len(metadata):
        return False
    import io

    state = {k: torch.empty(m.size, dtype=m.properties.dtype) if isinstance(m, TensorStorageMetadata) else io.BytesIO()
             for k, m in ((k, metadata[k]) for k in keys)}
    dcp.load(state, storage_reader=FileSystemReader(str(weights)), no_dist=True)
    # The checkpoint itself is untouched; its half-written copy goes.
    with removed_on_failure([new], new, lambda: checkpoint_weight_bytes(path), measured_at=path):
        dcp.save(state, storage_writer=FileSystemWriter(str(new)), no_dist=True)
        common = torch.load(weights / "common.pt", map_location="cpu", weights_only=False)
        torch.save({k: v for k, v in common.items() if k in WEIGHTS_ONLY_COMMON}, new / "common.pt")
        for extra in weights.iterdir():  # metadata.json and whatever else is not tensor data
            if extra.is_file() and not extra.name.endswith(".distcp") and extra.name not in (".metadata", "common.pt"):
                shutil.copy2(extra, new / extra.name)
        (new / _DONE).touch()
    weights.rename(old)
    new.rename(weights)
    (weights / _DONE).unlink()
    shutil.rmtree(old)
    return True


def prune_older_optimizer_states(checkpoint_dir: Path, global_batch_size: int) -> list[str]:
    """Only the newest complete checkpoint keeps its optimizer state (a resume needs only it):
    prune every older complete one that still has it. Returns the names pruned."""
    found = list_checkpoints(checkpoint_dir, global_batch_size)
    newest = max(found) if found else None
    return [p.name for s, p in found.items() if s != newest and has_optimizer_state(p) and prune_optimizer_state(p)]


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
