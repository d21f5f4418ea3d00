"""A finished train folder and parity reports, written by hand in the formats the train callback,
the train driver and the parity gates write (models/train_callback.py, train.py, nemo_io.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

GBS, SEQ, MAX_STEPS = 4, 8, 20
SOFTWARE = {"nemo": "2.7.0", "megatron.core": "0.15.3", "torch": "2.13.0", "python": "3.11.7"}


def write_train_folder(train_dir: Path, *, loss0: float = 10.0, resume_at: int | None = 6,
                       extra: dict | None = None) -> Path:
    """metrics.jsonl/runs.jsonl of a run interrupted after step 9 and resumed from the checkpoint
    after step 6 (steps 6-9 redone, with other losses), and the driver's metrics.json."""
    train_dir.mkdir(parents=True, exist_ok=True)
    first = range(10) if resume_at is not None else range(MAX_STEPS)
    lines = [{"step": s, "loss": loss0 - 0.1 * s, "lr": 1e-3, "seconds": 0.5, "tokens_per_s": GBS * SEQ / 0.5,
              **(extra or {})} for s in first]
    runs = [{"start_step": 0, "time": 1.0e9}]
    if resume_at is not None:
        runs.append({"start_step": resume_at, "time": 1.0e9 + 60})
        lines += [{"step": s, "loss": loss0 - 0.2 * s, "lr": 5e-4, "seconds": 1.0, "tokens_per_s": GBS * SEQ}
                  for s in range(resume_at, MAX_STEPS)]
    (train_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    (train_dir / "runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in runs))
    gate = {"passed": True, "reason": None, "nemo_loss": loss0, "hf_loss": loss0 * (1 + 1e-6),
            "relative_diff": 1e-6, "tolerance": 0.01, "tokens": GBS * SEQ, "objective": "causal",
            "control": "document", "hf_loss_control": loss0 * 1.05, "relative_diff_control": 0.05}
    summary = {"family_arch": "llama", "max_steps": MAX_STEPS, "step0_gate": gate, "steps": [],
               "training": {"global_batch_size": GBS, "seq_length": SEQ, "max_steps": MAX_STEPS},
               "software": SOFTWARE, "checkpoints": {"10": str(train_dir / "ck10"), "20": str(train_dir / "ck20")}}
    (train_dir / "metrics.json").write_text(json.dumps(summary))
    os.utime(train_dir / "metrics.json", (runs[0]["time"] + 120, runs[0]["time"] + 120))  # training ended 120 s in
    return train_dir / "metrics.json"


def write_parity(path: Path, passed: bool = True, rel_diff: float = 2e-7) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "what": "import (NeMo vs HF)", "passed": passed, "rel_diff": rel_diff, "top1_agreement": 1.0, "kl": 3e-12,
        "max_abs_diff": 1e-6, "logit_scale": 5.0, "failed_checks": [] if passed else ["max_rel_diff"],
        "thresholds": {"max_rel_diff": 1e-5, "min_top1_agreement": 1.0, "max_kl": 1e-8}, "software": SOFTWARE}))
    return path
