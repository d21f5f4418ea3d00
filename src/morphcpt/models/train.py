"""The training driver (called by the train rule): continued pretraining with NeMo 2.7 `llm.train`.

`run_training` checks the shards against the model's tokenizer and the run identity, computes the
step-0 HF reference loss (`step0_gate`), launches the worker (`recipe.train` via
`python -m morphcpt.models.train_worker`: plain Python on CPU, torchrun on GPUs), then writes
metrics.json and the train.done sentinel only if the worker finished every step and the gate passed.

Files in the (undeclared) train folder: checkpoints/ (see `checkpoints`), metrics.jsonl (one line
per step, appended across reruns), runs.jsonl (where each launch started), step0_reference.json,
step0_gate.json (kept when it failed: a failed gate stays failed), run_identity.json (a run of
other inputs is removed and training starts over: `train_inputs.check_run_identity`), train.lock and
train.worker.lock (one trainer per run folder: `run_lock`).

Preemption: on SIGTERM (Slurm's warning signal or a preemption) the driver passes the signal on and
gives the worker `training.preemption_grace_s` to finish its step and save a checkpoint
(`checkpoint_callbacks.SaveOnSigterm`); the rerun removes unfinished checkpoints and resumes from
the latest complete one.
"""

from __future__ import annotations

import contextlib
import json
import threading
from pathlib import Path
from typing import Any

from morphcpt import container
from morphcpt.errors import MorphcptError
from morphcpt.fileio import write_json_atomic
from morphcpt.models.checkpoints import (PREEMPTED_EXIT_CODE, checkpoint_save_bytes, failed_save_cleanup,
                                         latest_checkpoint, list_checkpoints, prune_older_optimizer_states,
                                         remove_resume_points, remove_unfinished, require_space_for_a_save)
from morphcpt.models.launch import launch_worker
from morphcpt.models.recipe import training_config
from morphcpt.models.run_lock import driver_lock
from morphcpt.models.slurm_requeue import requeue_this_job
from morphcpt.models.train_inputs import check_run_identity, check_shards, shard_prefixes


def read_metrics(train_dir: Path) -> list[dict[str, Any]]:
    """Per-step records of every run so far; a redone step keeps its latest record."""
    path = Path(train_dir) / "metrics.jsonl"
    by_step: dict[int, dict[str, Any]] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.strip():
                rec = json.loads(line)
                by_step[rec["step"]] = rec
    return [by_step[s] for s in sorted(by_step)]


def _resume_note(spec: dict[str, Any]) -> str:
    latest = latest_checkpoint(Path(spec["checkpoint_dir"]), spec["training"]["global_batch_size"])
    where = f"the checkpoint after step {latest[0]} ({latest[1].name})" if latest else "the imported weights"
    return f"rerunning resumes from {where} in {spec['checkpoint_dir']}"


def make_spec(*, family: dict[str, Any], nemo_dir: Path, hf_dir: Path, shard_files: list[str], train_dir: Path,
              checkpoint_dir: Path, training: dict[str, Any], seed: int, gpus: int, threads: int = 1) -> dict[str, Any]:
    from morphcpt.models.parallelism import train_settings

    par = family.get("parallelism", {})
    return {
        "arch": family["arch"], "nemo_dir": str(Path(nemo_dir).resolve()), "hf_dir": str(Path(hf_dir).resolve()),
        "shard_prefixes": [str(Path(p).resolve()) for p in shard_prefixes(shard_files)],
        "train_dir": str(Path(train_dir).resolve()), "checkpoint_dir": str(Path(checkpoint_dir).resolve()),
        "training": training_config(training), "seed": int(seed), "gpus": int(gpus), "threads": int(threads),
        "tensor": int(par.get("tensor", 1)) if gpus else 1, "pipeline": int(par.get("pipeline", 1)) if gpus else 1,
        "nodes": int(par.get("nodes", 1)) if gpus else 1,  # gpus per node; one torchrun agent per node (§6)
        "parallel_settings": train_settings(par, gpus),
    }


def _requeue_after_save(spec: dict[str, Any], started_from: tuple[int, Path] | None) -> None:
    """A Slurm job stopped by the warning before its time limit requeues itself (`slurm_requeue`)."""
    latest = latest_checkpoint(Path(spec["checkpoint_dir"]), spec["training"]["global_batch_size"])
    progressed = latest is not None and latest[0] > (started_from[0] if started_from else 0)
    note = requeue_this_job("train", progressed)
    if note:
        print(f"train: {note}", flush=True)


def _prune(ckpt_dir: Path, global_batch_size: int) -> None:
    pruned = prune_older_optimizer_states(ckpt_dir, global_batch_size)
    if pruned:
        print(f"train: optimizer state removed from {', '.join(pruned)} (only the newest checkpoint keeps it)",
              flush=True)


@contextlib.contextmanager
def _pruning_while_training(ckpt_dir: Path, global_batch_size: int, every_s: float = 20.0):
    """While the worker trains, a thread removes the optimizer state of every complete checkpoint
    once a newer one is complete (checkpoints being written carry NeMo's -unfinished marker and
    are not touched). A prune cut off by the driver's exit is finished or discarded next time."""
    stop = threading.Event()

    def loop():
        while not stop.wait(every_s):
            try:
                _prune(ckpt_dir, global_batch_size)
            except Exception as exc:  # noqa: BLE001 - pruning is retried at the next pass and at the end
                print(f"train: pruning optimizer state failed ({exc}); retried later", flush=True)

    thread = threading.Thread(target=loop, name="prune-optimizer-state", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=120)  # a prune cut off here is finished by the next one


def _save_bytes(spec: dict[str, Any]) -> int | None:
    """About what one checkpoint with optimizer state takes (None if the import cannot be read)."""
    try:
        return checkpoint_save_bytes(Path(spec["nemo_dir"]), str(spec["training"]["precision"]))
    except Exception as exc:  # noqa: BLE001 - only the space checks go without the estimate
        print(f"train: cannot estimate a checkpoint's size from {spec['nemo_dir']} ({exc}); no free-space check",
              flush=True)
        return None


def _refuse_failed_gate(gate_path: Path) -> None:
    """A failed step-0 gate stays failed: its report is kept and every rerun stops here, before
    any GPU work, until someone removes the report on purpose."""
    if not gate_path.is_file():
        return
    gate = json.loads(gate_path.read_text())
    if not gate.get("passed"):
        raise MorphcptError(
            f"step-0 gate failed: {gate.get('reason') or 'see the report'} (NeMo {gate.get('nemo_loss')} vs HF "
            f"{gate.get('hf_loss')}, {gate_path}). The report is kept and the gate is not retried. To rerun it on "
            f"purpose after fixing the cause, delete {gate_path} (or the whole {gate_path.parent} folder) and run "
            "the workflow again")


def run_training(spec: dict[str, Any], done_path: Path, metrics_path: Path,
                 env_extra: dict[str, str] | None = None) -> dict[str, Any]:
    """Driver: checks, step-0 reference, worker launch, then metrics.json and the sentinel.

    With `spec["container"]` (morphcpt.container.setting) the driver runs on the host and the NeMo
    work in the image: the stack and GPU check, the step-0 reference and the workers."""
    # Stops here, before any work, in an environment the NeMo rules do not accept.
    software = container.call(spec.get("container"), "train", spec["gpus"], "morphcpt.models.train:check_stack",
                              arch=spec["arch"])
    if spec["gpus"] and spec["gpus"] % (spec["tensor"] * spec["pipeline"]):
        raise MorphcptError(f"parallelism: gpus {spec['gpus']} is not a multiple of tensor x pipeline "
                            f"({spec['tensor']} x {spec['pipeline']})")
    Path(spec["train_dir"]).mkdir(parents=True, exist_ok=True)
    with driver_lock(Path(spec["train_dir"])):  # one trainer per run folder, before anything in it changes
        return _train_holding_the_folder(spec, done_path, metrics_path, env_extra, software)


def check_stack(arch: str) -> dict[str, Any]:
    """The NeMo stack of this process (where the workers run), or a MorphcptError with the fix.
    Without importing NeMo (`nemo_io.stack_check`): the driver builds no NeMo object except for
    the step-0 reference, which sets NeMo up itself, so a resumed launch skips NeMo's imports."""
    from morphcpt.models.nemo_io import check_arch_runnable, stack_check

    check_arch_runnable(arch)
    return stack_check()


def _train_holding_the_folder(spec: dict[str, Any], done_path: Path, metrics_path: Path,
                              env_extra: dict[str, str] | None, software: dict[str, Any]) -> dict[str, Any]:
    from morphcpt.models.packed_data import nemo_tokenizer_dir
    from morphcpt.models.step0_gate import compute_step0_reference_released

    t = spec["training"]
    train_dir, ckpt_dir = Path(spec["train_dir"]), Path(spec["checkpoint_dir"])
    for p in (Path(done_path), Path(metrics_path)):
        p.unlink(missing_ok=True)
    tok_dir = nemo_tokenizer_dir(Path(spec["nemo_dir"]))
    from transformers import AutoTokenizer

    model_tokenizer = AutoTokenizer.from_pretrained(str(tok_dir))
    check_shards(spec["shard_prefixes"], tok_dir, len(model_tokenizer), model_tokenizer.eos_token_id)
    removed = remove_unfinished(ckpt_dir)
    if removed:
        print(f"train: removed unfinished checkpoints of an interrupted save: {', '.join(removed)}", flush=True)
    check_run_identity(spec)
    gate_path = train_dir / "step0_gate.json"
    _refuse_failed_gate(gate_path)
    latest = latest_checkpoint(ckpt_dir, t["global_batch_size"])
    if latest is not None and latest[0] >= t["max_steps"]:
        print(f"train: the final checkpoint ({latest[1].name}) exists; nothing left to train", flush=True)
    else:
        if not (train_dir / "step0_reference.json").is_file():
            ref = compute_step0_reference_released(spec)  # released before the workers start
            print(f"train: step-0 HF reference loss {ref['loss_' + ref['objective']]:.6f} ({ref['objective']} "
                  f"attention; {ref['loss_' + ref['control']]:.6f} under {ref['control']} attention) over "
                  f"{ref['tokens']:.0f} tokens", flush=True)
        save_bytes = _save_bytes(spec)
        require_space_for_a_save(ckpt_dir, save_bytes)
        try:
            with _pruning_while_training(ckpt_dir, t["global_batch_size"]):
                rc = launch_worker(spec, env_extra, resume_note=_resume_note)
        except MorphcptError:  # stopped by a signal after the save: a transient stop
            _requeue_after_save(spec, latest)
            raise
        _refuse_failed_gate(gate_path)
        if rc == PREEMPTED_EXIT_CODE:
            _requeue_after_save(spec, latest)
            raise MorphcptError(f"training stopped on SIGTERM after saving a checkpoint; {_resume_note(spec)}")
        if rc != 0:
            failed_save_cleanup(ckpt_dir, rc, save_bytes)  # a full disk: NoSpaceError, no cut-off save left
            raise MorphcptError(f"training worker exited with code {rc}; see the log above. {_resume_note(spec)}")
    if not gate_path.is_file():
        raise MorphcptError(f"{gate_path}: missing: the step-0 gate never ran; delete {train_dir} and rerun")
    gate = json.loads(gate_path.read_text())
    metrics = read_metrics(train_dir)
    steps = [m["step"] for m in metrics]
    max_steps = t["max_steps"]
    if steps != list(range(max_steps)):
        missing = sorted(set(range(max_steps)) - set(steps))
        raise MorphcptError(f"{train_dir}/metrics.jsonl: steps missing {missing[:10]}; the run did not finish")
    remove_resume_points(ckpt_dir, t["global_batch_size"], max_steps, t["checkpoint_every"])
    _prune(ckpt_dir, t["global_batch_size"])  # the final checkpoint is the newest: no optimizer state is left
    kept = list_checkpoints(ckpt_dir, t["global_batch_size"])
    summary = {"family_arch": spec["arch"], "max_steps": max_steps, "step0_gate": gate, "steps": metrics,
               "training": t, "software": software, "checkpoints": {str(k): str(v) for k, v in kept.items()},
               # what the run was made from: base model, shard sidecar fingerprints, recipe, layout
               "run_identity": json.loads((train_dir / "run_identity.json").read_text())}
    write_json_atomic(Path(metrics_path), summary, sort_keys=True)
    Path(done_path).write_text(json.dumps({"max_steps": max_steps, "final_loss": metrics[-1]["loss"]}) + "\n")
    return summary
