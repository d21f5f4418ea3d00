"""What a finished train job left in its folder, read strictly: the per-step records of
metrics.jsonl (every launch appends; a redone step keeps its latest record), the launches of
runs.jsonl (where each one started), and the train rule's metrics.json (step-0 gate, training
settings, kept checkpoints, software).

Extra fields in any record are kept and ignored (the trainer may add some); a missing or mistyped
required field stops the reader with the file, the line and the fix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from morphcpt.corpus import jsonl_lines
from morphcpt.errors import MorphcptError

STEP_FIELDS = {"step": int, "loss": float, "lr": float, "seconds": float}
RUN_FIELDS = {"start_step": int, "time": float}
FIX = "the train job did not finish writing it; delete the train folder's train.done and rerun the train rule"


def _typed(value: Any, kind: type) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) if kind is int else isinstance(value, (int, float))


def read_records(path: Path, required: dict[str, type]) -> list[tuple[int, dict[str, Any]]]:
    """(line number, record) of every non-blank line; each must be a JSON object with `required`."""
    if not path.is_file():
        raise MorphcptError(f"{path}: missing; {FIX}")
    out = []
    with open(path, "rb") as fh:
        lines = list(jsonl_lines(fh))
    for lineno, raw in lines:
        try:
            rec = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise MorphcptError(f"{path}:{lineno}: not UTF-8 JSON ({exc}); {FIX}") from None
        if not isinstance(rec, dict):
            raise MorphcptError(f"{path}:{lineno}: a JSON object expected, got {type(rec).__name__}; {FIX}")
        bad = [f"{k} ({kind.__name__})" for k, kind in required.items() if not _typed(rec.get(k), kind)]
        if bad:
            raise MorphcptError(f"{path}:{lineno}: missing or mistyped field(s) {', '.join(bad)}; {FIX}")
        out.append((lineno, rec))
    return out


@dataclass
class TrainingLog:
    """One family x mode's training, as the report stage needs it."""

    mode: str
    train_dir: Path
    steps: list[dict[str, Any]]  # one per step 0..max_steps-1, the latest record of each
    records: int  # lines of metrics.jsonl (more than steps when a resume redid steps)
    launch_starts: list[int]  # start step of every launch, in order (the first is 0)
    launch_times: list[float]
    tokens_per_step: int
    max_steps: int
    checkpoint_steps: list[int]
    step0_gate: dict[str, Any]
    finished: float  # when the driver wrote metrics.json (its mtime, as Snakemake sees it)
    software: dict[str, Any] = field(default_factory=dict)

    @property
    def resume_steps(self) -> list[int]:
        """Where every launch after the first started (a resume, or a restart from step 0)."""
        return self.launch_starts[1:]

    @property
    def wall_seconds(self) -> float | None:
        """From the first launch to metrics.json: every launch, the waits between them, the final
        checkpoint save (not the step-0 reference before the first launch). None if the clock
        disagrees (files copied without their times)."""
        wall = self.finished - self.launch_times[0]
        return wall if wall >= 0 else None

    @property
    def tokens_seen(self) -> int:
        return self.max_steps * self.tokens_per_step

    @property
    def step_seconds(self) -> float:
        """Time in training steps of the kept records (excludes startup, checkpoint saves, redone steps)."""
        return sum(s["seconds"] for s in self.steps)

    def tokens_before(self, step: int) -> int:
        """Tokens the model had trained on when step `step` began (step 0: none)."""
        return step * self.tokens_per_step


def _require(obj: dict[str, Any], keys: tuple[str, ...], path: Path, where: str) -> None:
    missing = [k for k in keys if k not in obj]
    if missing:
        raise MorphcptError(f"{path}: {where} lacks {', '.join(missing)}; {FIX}")


def read_training_log(metrics_json: str | Path, mode: str) -> TrainingLog:
    """Read a train folder through its declared output metrics.json (the folder's other files sit beside it)."""
    metrics_json = Path(metrics_json)
    train_dir = metrics_json.parent
    try:
        summary = json.loads(metrics_json.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise MorphcptError(f"{metrics_json}: unreadable ({exc}); {FIX}") from None
    _require(summary, ("training", "step0_gate", "max_steps", "checkpoints"), metrics_json, "the summary")
    _require(summary["training"], ("global_batch_size", "seq_length"), metrics_json, "training")
    _require(summary["step0_gate"], ("passed", "nemo_loss", "hf_loss", "relative_diff", "relative_diff_control",
                                     "tolerance"), metrics_json, "step0_gate")
    by_step: dict[int, dict[str, Any]] = {}
    lines = read_records(train_dir / "metrics.jsonl", STEP_FIELDS)
    for _, rec in lines:
        by_step[rec["step"]] = rec
    max_steps = int(summary["max_steps"])
    missing = sorted(set(range(max_steps)) - set(by_step))
    if missing:
        raise MorphcptError(f"{train_dir / 'metrics.jsonl'}: steps {missing[:10]} missing of 0..{max_steps - 1}; {FIX}")
    runs = read_records(train_dir / "runs.jsonl", RUN_FIELDS)
    if not runs:
        raise MorphcptError(f"{train_dir / 'runs.jsonl'}: no launch recorded; {FIX}")
    t = summary["training"]
    return TrainingLog(
        mode=mode, train_dir=train_dir, steps=[by_step[s] for s in range(max_steps)], records=len(lines),
        launch_starts=[r["start_step"] for _, r in runs], launch_times=[float(r["time"]) for _, r in runs],
        tokens_per_step=int(t["global_batch_size"]) * int(t["seq_length"]), max_steps=max_steps,
        checkpoint_steps=sorted(int(s) for s in summary["checkpoints"]), step0_gate=summary["step0_gate"],
        finished=metrics_json.stat().st_mtime, software=summary.get("software") or {})

