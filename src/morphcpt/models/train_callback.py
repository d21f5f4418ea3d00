"""The training worker's callback: loss/LR per step, tokens/s, and the step-0 gate.

Kept apart from train.py because it subclasses a Lightning class (imported only in the worker).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import Callback

from morphcpt.models.train import KILL_ENV, batch_digest, first_global_batch


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


class MetricsCallback(Callback):
    def __init__(self, spec: dict[str, Any]):
        self.spec = spec
        self.train_dir = Path(spec["train_dir"])
        self.tokens_per_step = spec["training"]["global_batch_size"] * spec["training"]["seq_length"]
        self.start_step = None
        self._lr = None
        self._t0 = None

    def on_train_start(self, trainer, pl_module):
        self.start_step = trainer.global_step
        print(f"train: worker rank {_rank()} starts at step {self.start_step}", flush=True)
        if _rank() == 0:
            with open(self.train_dir / "runs.jsonl", "a") as f:
                f.write(json.dumps({"start_step": self.start_step, "time": time.time()}) + "\n")
        if self.start_step == 0 and _rank() == 0:
            # The gate compares against the HF loss of exactly these samples: prove they are the same.
            ref = json.loads((self.train_dir / "step0_reference.json").read_text())
            samples = first_global_batch(trainer.datamodule._train_ds, self.spec["training"]["global_batch_size"])
            if batch_digest(samples) != ref["batch_digest"]:
                self._fail_gate({"passed": False, "reason": "the trainer's step-0 batch differs from the reference batch",
                                 "nemo_loss": float("nan"), "hf_loss": ref["loss_document"], "relative_diff": float("nan"),
                                 "tolerance": self.spec["training"]["step0_loss_tolerance"]})

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        step = trainer.global_step
        if os.environ.get(KILL_ENV) == str(step) and self.start_step == 0 and step > 0:
            print(f"train: {KILL_ENV}={step}: killing this process (simulated preemption)", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
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
        tol = float(self.spec["training"]["step0_loss_tolerance"])
        rel = {kind: (abs(nemo_loss - ref[f"loss_{kind}"]) / abs(ref[f"loss_{kind}"]) if nemo_loss is not None
                      else float("nan")) for kind in ("document", "causal")}
        matched = min(rel, key=lambda k: rel[k])
        gate = {"passed": bool(rel[matched] < tol), "nemo_loss": nemo_loss, "hf_loss": ref[f"loss_{matched}"],
                "relative_diff": rel[matched], "tolerance": tol, "tokens": ref["tokens"],
                "matched_attention": matched, "expected_attention": ref["expected_attention"],
                "document_attention": matched == "document",
                "hf_loss_document": ref["loss_document"], "hf_loss_causal": ref["loss_causal"],
                "relative_diff_document": rel["document"], "relative_diff_causal": rel["causal"]}
        if gate["passed"]:
            self._write_gate(gate)
            print(f"train: step-0 gate passed: NeMo {nemo_loss:.6f} vs HF {gate['hf_loss']:.6f} "
                  f"({matched} attention; relative {rel[matched]:.2e} < {tol})", flush=True)
            if matched != ref["expected_attention"]:
                print(f"train: WARNING: NeMo's step-0 loss matches HF with {matched} attention, not the expected "
                      f"{ref['expected_attention']} attention: packed documents "
                      f"{'do not ' if matched == 'document' else ''}attend across their boundaries in this build",
                      flush=True)
        else:
            self._fail_gate(gate)

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
