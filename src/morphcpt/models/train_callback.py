"""The training worker's callback: loss/LR per step, tokens/s, and the step-0 gate.

A module of its own because it subclasses a Lightning class (imported only in the worker).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import Callback

from morphcpt.errors import MorphcptError
from morphcpt.models.gate_batch import gate_samples
from morphcpt.models.packed_data import batch_digest, first_global_batch
from morphcpt.models.step0_gate import verdict


def _rank() -> int:
    import torch.distributed as dist

    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def _loss_value(trainer, outputs) -> float | None:
    value = outputs
    if isinstance(value, dict):
        value = value.get("loss", value.get("reduced_train_loss"))
    if value is None:
        value = trainer.callback_metrics.get("reduced_train_loss")
    if value is None:
        return None
    return float(value.detach().float().cpu()) if hasattr(value, "detach") else float(value)


def _gate_batch_loss(trainer, samples: list[dict[str, Any]], spec: dict[str, Any]) -> float:
    """NeMo's loss on the gate batch before the first step: the training model's forward (the
    GPT data step, forward step and masked-token loss reduction of NeMo's validation step, no
    gradient), over the whole batch, token-weighted like the HF reference.

    NeMo's data sampler sets every step's micro-batch count to global_batch / (micro_batch x
    data-parallel size) whatever the caller passes, and the loss reduction all-reduces over the
    data-parallel group. So the gate's micro batches go out in chunks of one step's worth for all
    data-parallel ranks: each rank takes its own slice of the chunk, padded with copies whose loss
    mask is all zero (the reduction skips them), and the chunks' losses are combined by their token
    counts. Every rank runs it (the reduction is a collective); with pipeline stages the last
    stage's loss is shared with all."""
    import torch
    from megatron.core import parallel_state

    from morphcpt.models.gate_batch import gate_micro_batches

    mbs = int(spec["training"]["micro_batch_size"])
    dp = parallel_state.get_data_parallel_world_size()
    dp_rank = parallel_state.get_data_parallel_rank()
    per_rank = int(spec["training"]["global_batch_size"]) // (mbs * dp)  # what NeMo's sampler makes a step use
    batches = gate_micro_batches(samples, mbs)
    padding = {**batches[0], "loss_mask": torch.zeros_like(batches[0]["loss_mask"])}
    strategy = trainer.strategy
    total = tokens = 0.0
    for start in range(0, len(batches), per_rank * dp):
        chunk = batches[start:start + per_rank * dp]
        mine = chunk[dp_rank * per_rank:(dp_rank + 1) * per_rank]
        feed = iter(mine + [padding] * (per_rank - len(mine)))
        with torch.no_grad(), strategy.precision_plugin.train_step_context():
            loss = strategy.model.validation_step(feed, num_microbatches=per_rank, micro_batch_size=mbs,
                                                  seq_length=int(samples[0]["tokens"].shape[-1]))
        if next(feed, None) is not None:  # NeMo used fewer micro batches than a step's: the loss is partial
            raise MorphcptError(f"the step-0 gate forward used fewer than {per_rank} micro batches per rank; "
                                "NeMo's step size differs from global_batch_size / (micro_batch_size x data "
                                "parallel size): the gate batch would be partly unscored")
        loss = loss.detach().float() if torch.is_tensor(loss) else torch.tensor(float(loss))
        if parallel_state.get_pipeline_model_parallel_world_size() > 1:
            torch.distributed.all_reduce(loss, group=parallel_state.get_pipeline_model_parallel_group())
        chunk_tokens = float(sum(float(b["loss_mask"].sum()) for b in chunk))
        total += float(loss.cpu()) * chunk_tokens
        tokens += chunk_tokens
    return total / tokens


class MetricsCallback(Callback):
    def __init__(self, spec: dict[str, Any]):
        self.spec = spec
        self.train_dir = Path(spec["train_dir"])
        self.tokens_per_step = spec["training"]["global_batch_size"] * spec["training"]["seq_length"]
        self.start_step = None
        self._lr = None
        self._t0 = None
        self._gate_loss = None

    def on_train_start(self, trainer, pl_module):
        self.start_step = trainer.global_step
        print(f"train: worker rank {_rank()} starts at step {self.start_step}", flush=True)
        if _rank() == 0:
            with open(self.train_dir / "runs.jsonl", "a") as f:
                f.write(json.dumps({"start_step": self.start_step, "time": time.time()}) + "\n")
        if self.start_step == 0:
            # The gate compares against the HF losses of exactly these samples: prove they are the same.
            train_ds = trainer.datamodule._train_ds
            gate = gate_samples(train_ds, self.spec, int(trainer.datamodule.tokenizer.eos_id))
            if _rank() == 0:
                ref = json.loads((self.train_dir / "step0_reference.json").read_text())
                samples = first_global_batch(train_ds, self.spec["training"]["global_batch_size"])
                for name, batch, digest in (("step-0", samples, ref["batch_digest"]),
                                            ("gate", gate, ref["gate_batch"]["batch_digest"])):
                    if batch_digest(batch) != digest:
                        report = verdict(None, ref, float(self.spec["training"]["step0_loss_tolerance"]), None)
                        report["passed"] = False
                        report["reason"] = f"the trainer's {name} batch differs from the reference batch"
                        self._fail_gate(report)
            self._gate_loss = _gate_batch_loss(trainer, gate, self.spec)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._lr = float(trainer.optimizers[0].param_groups[0]["lr"])
        self._t0 = time.time()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        step = trainer.global_step - 1  # the optimizer step that just finished
        loss = _loss_value(trainer, outputs)
        seconds = time.time() - self._t0
        if _rank() == 0:
            rec = {"step": step, "loss": loss, "lr": self._lr, "seconds": seconds,
                   "tokens_per_s": self.tokens_per_step / seconds if seconds > 0 else None}
            with open(self.train_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps(rec) + "\n")
            print(f"train: step {step} loss {loss:.6f} lr {self._lr:.3e} {rec['tokens_per_s'] or 0:.0f} tok/s", flush=True)
        if step == 0 and self.start_step == 0 and _rank() == 0:
            self._step0_gate(loss)

    def _step0_gate(self, nemo_loss: float | None) -> None:
        ref = json.loads((self.train_dir / "step0_reference.json").read_text())
        gate = verdict(nemo_loss, ref, float(self.spec["training"]["step0_loss_tolerance"]), self._gate_loss)
        if not gate["passed"]:
            self._fail_gate(gate)
        self._write_gate(gate)
        g = gate["gate_batch"]
        print(f"train: step-0 gate passed: NeMo {nemo_loss:.6f} vs HF {gate['hf_loss']:.6f} on the first batch "
              f"(relative {gate['relative_diff']:.2e} < {gate['tolerance']}); on the gate batch ({g['documents']} "
              f"documents) NeMo {g['nemo_loss']:.6f} vs HF {g['hf_loss']:.6f} under {gate['objective']} attention "
              f"({g['relative_diff']:.2e}), {g['hf_loss_control']:.6f} under {gate['control']} attention "
              f"({g['relative_diff_control']:.2e}; the objectives differ by {gate['control_gap']:.2e})", flush=True)

    def _write_gate(self, gate: dict[str, Any]) -> None:
        path = self.train_dir / "step0_gate.json"
        tmp = path.with_name(".step0_gate.json.tmp")
        tmp.write_text(json.dumps(gate, indent=1))
        tmp.rename(path)

    def _fail_gate(self, gate: dict[str, Any]) -> None:
        self._write_gate(gate)
        print(f"train: STEP-0 GATE FAILED: {gate}", file=sys.stderr, flush=True)
        # Exit now, before any checkpoint of a wrong start exists; torchrun stops the other ranks.
        os._exit(3)
