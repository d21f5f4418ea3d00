"""Lightning callbacks of the training worker that save checkpoints NeMo's ModelCheckpoint would
not: the final one when max_steps is not a multiple of checkpoint_every, and one on SIGTERM
(preemption, or Slurm's warning signal before the time limit) so the rerun loses no steps.

Both save through the trainer's ModelCheckpoint (`morphcpt.models.checkpoints.checkpoint_callback`),
so names, the `-unfinished` marker and the optimizer-state rule are the same as for its own saves.
"""

from __future__ import annotations

import signal
import sys

from lightning.pytorch.callbacks import Callback

from morphcpt.models.checkpoints import PREEMPTED_EXIT_CODE


def _save_now(trainer) -> bool:
    """Save a checkpoint of the current step through the ModelCheckpoint, unless one exists."""
    ckpt = trainer.checkpoint_callback
    if ckpt is None or ckpt._should_skip_saving_checkpoint(trainer):
        return False
    ckpt._save_topk_checkpoint(trainer, ckpt._monitor_candidates(trainer))
    return True


class FinalCheckpoint(Callback):
    """The checkpoint after max_steps, when the every-N saves did not land on it."""

    def on_train_end(self, trainer, pl_module):
        if trainer.global_step == trainer.max_steps:
            _save_now(trainer)


class SaveOnSigterm(Callback):
    """On SIGTERM, finish the current step, save a checkpoint (with optimizer state) and exit with
    PREEMPTED_EXIT_CODE. Rank 0 receives the signal; the decision is broadcast every step so all
    ranks save and stop together. The driver waits `training.preemption_grace_s` for this."""

    def __init__(self, stopped_marker=None):
        self._interrupted = False
        self._previous = None
        # rank 0 writes {"signal", "step"} here once the save is complete: on several nodes the
        # driver is not signalled and reads it (morphcpt.models.launch.PREEMPTED_MARKER)
        self._marker = stopped_marker

    def on_train_start(self, trainer, pl_module):
        def handler(signum, _frame):
            print(f"train: received signal {signum}: saving a checkpoint after this step", flush=True)
            self._interrupted = True

        # Megatron's checkpoint writer reports through a multiprocessing Manager it spawns at the
        # first save. A spawned process starts with SIGTERM at its default (die) unless the parent
        # ignores it: start it now with SIGTERM ignored, so the SIGTERM that asks for the save
        # (Slurm signals every process of the job step) does not kill the writer mid-save.
        self._previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
        from megatron.core.dist_checkpointing.strategies.filesystem_async import _get_write_results_queue

        _get_write_results_queue()
        signal.signal(signal.SIGTERM, handler)

    def on_train_end(self, trainer, pl_module):
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
            self._previous = None

    def _any_rank_interrupted(self, trainer) -> bool:
        import torch
        import torch.distributed as dist

        # Lightning's own SIGTERM handler (if it got the signal first) sets received_sigterm and
        # raises after this hook: save now in either case.
        interrupted = self._interrupted or bool(getattr(trainer, "received_sigterm", False))
        if not (dist.is_available() and dist.is_initialized()):
            return interrupted
        flag = torch.tensor([int(interrupted)], dtype=torch.int32,
                            device="cuda" if torch.cuda.is_available() else "cpu")
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if not self._any_rank_interrupted(trainer):
            return
        saved = _save_now(trainer)
        print(f"train: preempted after step {trainer.global_step}; "
              f"{'checkpoint saved' if saved else 'checkpoint of this step already saved'}; exiting", flush=True)
        if self._marker is not None and trainer.is_global_zero:
            from morphcpt.fileio import write_json_atomic

            write_json_atomic(self._marker, {"signal": int(signal.SIGTERM), "step": int(trainer.global_step)})
        sys.exit(PREEMPTED_EXIT_CODE)
