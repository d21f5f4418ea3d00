"""Checkpoint folders found by name, and the export's message when one was deleted after training."""

from __future__ import annotations

import pytest

from morphcpt.errors import MorphcptError
from morphcpt.models.checkpoints import checkpoint_at_step


def _checkpoints(folder, steps, gbs=8):
    for s in steps:
        (folder / f"step={s - 1}-consumed_samples={s * gbs}.0").mkdir(parents=True)
    return folder


def test_a_deleted_checkpoint_names_itself_and_how_to_recreate_it(tmp_path):
    ckpts = _checkpoints(tmp_path / "llama" / "patok" / "train" / "checkpoints", [10, 30])  # step 20 deleted
    assert checkpoint_at_step(ckpts, 30, 8).name == "step=29-consumed_samples=240.0"
    with pytest.raises(MorphcptError) as info:
        checkpoint_at_step(ckpts, 20, 8)
    message = str(info.value)
    assert message.startswith(f"{ckpts}: no checkpoint after step 20 (present: steps [10, 30]); it was deleted")
    assert f"delete step=29-consumed_samples=240.0 and {ckpts.parent / 'train.done'}, then rerun" in message
    assert "resumes from the checkpoint after step 10" in message
    assert "multiples of" not in message and "\n" not in message
    with pytest.raises(MorphcptError, match=f"delete {ckpts.parent} and rerun: training starts again"):
        checkpoint_at_step(ckpts, 5, 8)
