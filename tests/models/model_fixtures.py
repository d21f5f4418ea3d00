"""Helpers of the model tests: fixture shards written directly with megatron-core's
IndexedDatasetBuilder plus a sidecar with the keys the shard stage writes (docs/design.md §5), the shared
training recipe, and subprocess runners (pytest puts tests/models on sys.path)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
TESTS = Path(__file__).resolve().parent

# The recipe of the shared run: 20 steps, a checkpoint every 5 (conftest.training_run interrupts it twice).
TRAINING = dict(seq_length=64, global_batch_size=4, micro_batch_size=1, max_steps=20, lr=1.0e-3, min_lr=1.0e-4,
                warmup_steps=3, weight_decay=0.1, adam_beta1=0.9, adam_beta2=0.95, adam_eps=1.0e-5, clip_grad=1.0,
                precision="32", checkpoint_every=5, step0_loss_tolerance=1.0e-4, attention="causal",
                preemption_grace_s=300)
# Parity thresholds: the demo's (fp32 tiny model: exact up to summation order) and the schema's defaults.
DEMO_PARITY = {"max_rel_diff": 1.0e-5, "min_top1_agreement": 1.0, "max_kl": 1.0e-8}
DEFAULT_PARITY = {"max_rel_diff": 1.0e-3, "min_top1_agreement": 0.99, "max_kl": 1.0e-4}


def run_python(code: str, env_extra: dict[str, str] | None = None, timeout: int = 1500) -> tuple[int, str]:
    """Run `code` (under a __main__ guard) in a fresh interpreter with src/ and tests/models
    importable; returns (exit code, the tail of its output). Output goes to a file, not a pipe:
    a pipe would also wait for any orphaned grandchild that inherited it."""
    import tempfile

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), str(TESTS), env.get("PYTHONPATH", "")])
    env.update(env_extra or {})
    script = "if __name__ == '__main__':\n" + textwrap.indent(textwrap.dedent(code), "    ")
    with tempfile.TemporaryFile(mode="w+") as log:
        proc = subprocess.run([sys.executable, "-c", script], env=env, stdout=log, stderr=subprocess.STDOUT,
                              timeout=timeout)
        log.seek(0)
        return proc.returncode, log.read()[-8000:]


def run_json(code: str, out: Path, env_extra: dict[str, str] | None = None) -> dict:
    """run_python, which must exit 0 and write JSON to `out`; returns it."""
    rc, output = run_python(code, env_extra)
    if rc != 0 or not out.is_file():
        raise AssertionError(f"subprocess failed (rc {rc}):\n{output}")
    return json.loads(out.read_text())


def training_spec(nemo_dir: Path, hf_dir: Path, shard_files: list[str], train_dir: Path, **overrides) -> dict:
    from morphcpt.models.train import make_spec

    training = {**TRAINING, **overrides.pop("training", {})}
    spec = make_spec(family={"arch": "llama"}, nemo_dir=nemo_dir, hf_dir=hf_dir, shard_files=shard_files,
                     train_dir=train_dir, checkpoint_dir=train_dir / "checkpoints", training=training, seed=7,
                     gpus=0, threads=2)
    spec.update(overrides)
    return spec


def _training_script(spec: dict, result: Path) -> str:
    spec_path = result.with_suffix(".spec.json")
    spec_path.write_text(json.dumps(spec))
    train_dir = Path(spec["train_dir"])
    return f"""
        import json
        from pathlib import Path
        from morphcpt.errors import MorphcptError
        from morphcpt.models.train import run_training
        spec = json.loads(Path({str(spec_path)!r}).read_text())
        try:
            summary = run_training(spec, Path({str(train_dir / 'train.done')!r}), Path({str(train_dir / 'metrics.json')!r}))
            out = {{"ok": True, "error": None, "summary": summary}}
        except MorphcptError as exc:
            out = {{"ok": False, "error": str(exc), "summary": None}}
        Path({str(result)!r}).write_text(json.dumps(out))
    """


def run_training_subprocess(spec: dict, result: Path, env_extra: dict[str, str] | None = None) -> dict:
    """run_training in a fresh process; returns {"ok": bool, "error": str|None, "summary": ...}."""
    return run_json(_training_script(spec, result), result, env_extra)


def interrupt_training(spec: dict, result: Path, ready, sig: int, timeout: float = 1500) -> dict:
    """Start run_training in a fresh process, wait until `ready()` is true (polled every 20 ms),
    then send `sig`: SIGTERM to the driver only (it passes it on, as Slurm's warning would reach
    it), SIGKILL to the driver and every process under it (a node lost mid-step). Returns the
    driver's result ({"ok": False, ...} after SIGTERM; {"killed": True} after SIGKILL)."""
    import signal
    import tempfile
    import time

    import psutil

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), str(TESTS), env.get("PYTHONPATH", "")])
    script = "if __name__ == '__main__':\n" + textwrap.indent(textwrap.dedent(_training_script(spec, result)), "    ")
    with tempfile.TemporaryFile(mode="w+") as log:
        proc = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        try:
            while not ready():
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    result.with_suffix(".log").write_text(log.read())
                    log.seek(0)
                    raise AssertionError(f"training ended (rc {proc.returncode}) before the interruption point:\n"
                                         + log.read()[-8000:])
                time.sleep(0.02)
            if sig == signal.SIGKILL:
                tree = [proc.pid] + [p.pid for p in psutil.Process(proc.pid).children(recursive=True)]
                for pid in tree:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                proc.wait(timeout=60)
                return {"killed": True}
            proc.send_signal(sig)
            proc.wait(timeout=timeout)
        finally:
            if proc.poll() is None:
                proc.kill()
        log.seek(0)
        output = log.read()
    result.with_suffix(".log").write_text(output)
    output = output[-8000:]
    if not result.is_file():
        raise AssertionError(f"interrupted training wrote no result (rc {proc.returncode}):\n{output}")
    return {**json.loads(result.read_text()), "output": output}


def write_fixture_shard(prefix: Path, tokenizer_dir: Path, texts: list[str], mode: str = "vanilla",
                        chunk: str = "000", fingerprint: str | None = None) -> Path:
    """One shard: every text as bos + canonical ids + eos. Returns the prefix."""
    import numpy as np
    import torch
    from megatron.core.datasets.indexed_dataset import DType, IndexedDatasetBuilder

    from morphcpt.tokenization import TokenizerAdapter

    adapter = TokenizerAdapter.from_dir(tokenizer_dir)
    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    dtype = DType.optimal_dtype(adapter.vocab_size)
    builder = IndexedDatasetBuilder(str(prefix) + ".bin", dtype=dtype)
    tokens = 0
    for text in texts:
        ids = [adapter.bos_id] + list(adapter.encode(text)) + [adapter.eos_id]
        tokens += len(ids)
        builder.add_document(torch.tensor(ids), [len(ids)])
    builder.finalize(str(prefix) + ".idx")
    sidecar = {
        "tokenizer_fingerprint": fingerprint or adapter.fingerprint, "vocab_size": adapter.vocab_size,
        "bos_id": adapter.bos_id, "eos_id": adapter.eos_id, "dtype": np.dtype(dtype).name, "mode": mode,
        "params": {}, "seed": 0, "chunk": chunk, "documents": len(texts), "tokens_in": tokens, "tokens_out": tokens,
        "ratio": 1.0, "counters": {}, "code_version": "test-fixture", "bad_lines": {},
    }
    Path(str(prefix) + ".json").write_text(json.dumps(sidecar, indent=1))
    return prefix
