"""Out of disk space where models are written (issue 22 item 3), on a real small tmpfs (root; skipped
with the reason otherwise): an HF export, a training checkpoint cut off mid-save, the optimizer-state
prune, and the free-space check before training. Each stops with one line naming the path and the
space needed, and leaves no partial or temporary file (docs/design.md §6, §7)."""

from __future__ import annotations

from pathlib import Path

import pytest

from morphcpt.fileio import NoSpaceError, caused_by_no_space, tree_bytes
from morphcpt.models.checkpoints import (NO_SPACE_EXIT_CODE, failed_save_cleanup, has_optimizer_state,
                                         list_checkpoints, prune_optimizer_state, require_space_for_a_save)


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if not p.is_dir())


def _one_line(message: str, path: Path, needs: str) -> None:
    assert "\n" not in message
    assert message.startswith(f"{path}: out of disk space (it needs about {needs}, "), message
    assert "free there); no partial or temporary file was left" in message


def test_an_hf_export_that_fills_the_disk_leaves_no_folder(small_tmpfs, tiny_llama_hf):
    """The exporters' writer (transformers' save_pretrained -> safetensors, which wraps the OS error
    in its own exception) into the temporary sibling folder of export.atomic_output_dir."""
    from transformers import AutoModelForCausalLM

    from morphcpt.models.nemo_io import atomic_output_dir

    disk = small_tmpfs("8m")
    out = disk / "tiny" / "patok" / "export" / "step_30"
    model = AutoModelForCausalLM.from_pretrained(tiny_llama_hf)  # ~66 MB of fp32 safetensors
    with pytest.raises(NoSpaceError) as info:
        with atomic_output_dir(out, needed_bytes=tree_bytes(tiny_llama_hf)) as tmp_out:
            model.save_pretrained(tmp_out)
    _one_line(str(info.value), out, f"{tree_bytes(tiny_llama_hf) / 1e6:.1f} MB")
    assert _files(disk) == [] and not out.exists()


def _dcp_checkpoint(path: Path, numel: int) -> Path:
    """A torch_dist checkpoint as NeMo saves one to resume from: model tensor + optimizer state."""
    import torch
    import torch.distributed.checkpoint as dcp

    state = {"module.w": torch.ones(numel), "optimizer.state.exp_avg.module.w": torch.ones(numel)}
    dcp.save(state, storage_writer=dcp.FileSystemWriter(str(path / "weights")), no_dist=True)
    torch.save({"global_step": 5, "state_dict": {}, "optimizer_states": [{}]}, path / "weights" / "common.pt")
    return path


def test_a_prune_that_fills_the_disk_keeps_the_checkpoint_and_leaves_no_copy(small_tmpfs):
    """torch.distributed.checkpoint (the writer under NeMo's torch_dist checkpoints) hits the full disk
    while the weights-only copy is written. The OS error does not survive: torch.save's zip writer
    reports "unexpected pos" inside a CheckpointException, so fileio.disk_was_full also compares
    the free space with what the write needed."""
    disk = small_tmpfs("3m")
    ckpt = _dcp_checkpoint(disk / "step=4-consumed_samples=20.0", 300_000)  # 2 x 1.2 MB
    before = _files(disk)
    with pytest.raises(NoSpaceError) as info:
        prune_optimizer_state(ckpt)
    _one_line(str(info.value), ckpt / "weights.pruning", "1.2 MB")
    assert _files(disk) == before and has_optimizer_state(ckpt)  # untouched: a resume can still use it


def _cut_off_save(checkpoint_dir: Path) -> Path:
    """A checkpoint whose save a full disk stopped: NeMo's -unfinished marker, then data until ENOSPC."""
    ckpt = checkpoint_dir / "step=9-consumed_samples=40.0"
    (ckpt / "weights").mkdir(parents=True)
    (checkpoint_dir / (ckpt.name + "-unfinished")).touch()
    with pytest.raises(OSError) as info:
        with open(ckpt / "weights" / "__0_0.distcp", "wb") as fh:
            for _ in range(64):
                fh.write(b"\0" * 65536)
                fh.flush()
    assert caused_by_no_space(info.value)
    return ckpt


def test_a_save_cut_off_by_a_full_disk_is_never_resumed_and_is_removed(small_tmpfs):
    ckpt_dir = small_tmpfs("1m") / "train" / "checkpoints"
    done = ckpt_dir / "step=4-consumed_samples=20.0"
    (done / "weights").mkdir(parents=True)
    ckpt = _cut_off_save(ckpt_dir)
    assert list(list_checkpoints(ckpt_dir, 4)) == [5]  # the resume rule skips it
    # The worker's exit code said nothing (torchrun exits 1): a cut-off save on a disk with less free
    # than a checkpoint needs is the full disk.
    with pytest.raises(NoSpaceError) as info:
        failed_save_cleanup(ckpt_dir, 1, 3e6)
    _one_line(str(info.value), ckpt, "3.0 MB")
    assert sorted(p.name for p in ckpt_dir.iterdir()) == [done.name]
    # The worker said so itself (NO_SPACE_EXIT_CODE), with nothing cut off.
    with pytest.raises(NoSpaceError, match=f"^{ckpt_dir}: out of disk space"):
        failed_save_cleanup(ckpt_dir, NO_SPACE_EXIT_CODE, 3e6)
    # Another failure during a save, with room to spare: the cut-off save goes, the error is not disk full.
    (ckpt / "weights").mkdir(parents=True)
    (ckpt_dir / (ckpt.name + "-unfinished")).touch()
    assert failed_save_cleanup(ckpt_dir, 1, 1e5) == [ckpt.name]
    assert sorted(p.name for p in ckpt_dir.iterdir()) == [done.name]


def test_training_does_not_start_without_room_for_one_checkpoint(small_tmpfs):
    disk = small_tmpfs("1m")
    with pytest.raises(NoSpaceError) as info:
        require_space_for_a_save(disk / "run" / "checkpoints", 2.5e6)
    _one_line(str(info.value), disk / "run" / "checkpoints", "2.5 MB")
    assert _files(disk) == [] and not (disk / "run").exists()
    require_space_for_a_save(disk / "run" / "checkpoints", 5e5)


@pytest.mark.slow
def test_the_space_estimates_read_the_real_checkpoints(training_run, imported_nemo):
    """checkpoint_weight_bytes (what an export needs) against the final checkpoint's tensor files, and
    checkpoint_save_bytes (the pre-flight check; precision 32: fp32 weights + 8 B/param of Adam
    moments, plus context/) against the same parameters read from the import."""
    from morphcpt.models.checkpoints import checkpoint_save_bytes, checkpoint_weight_bytes

    final = list_checkpoints(training_run["train_dir"] / "checkpoints", 4)[20]
    on_disk = sum(p.stat().st_size for p in (final / "weights").glob("*.distcp"))
    assert checkpoint_weight_bytes(final) == pytest.approx(on_disk, rel=0.01)
    context = tree_bytes(imported_nemo / "context")
    assert context > 1e6  # the tokenizer files
    assert checkpoint_save_bytes(imported_nemo, "32") - context == 3 * checkpoint_weight_bytes(final)
