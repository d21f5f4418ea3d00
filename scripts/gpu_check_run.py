"""The GPU check's pipeline (run by scripts/gpu_check.sh): a synthetic Llama through the package code
the workflow runs: write (seeded random weights) -> import to NeMo -> import parity gate -> CPT
steps in bf16 through the real train driver (step-0 gate, torchrun) -> export of the last
checkpoint -> export parity gate. Writes OUT/gpu_check.json with every figure and exits 0 only if
every gate passed.

    python scripts/gpu_check_run.py OUT [--cpu-smoke]

GPU: a Llama-3.2-1B-shaped model (hidden 2048, 12 layers, untied head: 1.26 B params), seq 2048,
micro batch 2, global batch 32, 30 steps, bf16-mixed, the distributed optimizer and overlapped
grad reduce / param gather (the real config's throughput settings). --cpu-smoke: the same code on
CPU with a tiny fp32 model and 10 short steps (CI keeps this glue tested; its speed means nothing).

The parity thresholds are the real config's (`parity:` in config/config.yaml), so the check runs
the production gates with the production thresholds. MFU = tokens/s/GPU × FLOPs per token ÷ the
peak: FLOPs per token = 6 × (params − input embedding) + 12 × layers × hidden × seq (PaLM's
formula, attention counted without a causal discount); peak = 989 TFLOP/s, the dense bf16 peak of
an H100/H200 SXM (same chip generation).

Written to a file and run under a __main__ guard: Megatron's checkpoint writer spawns processes
that re-import __main__.
"""

from __future__ import annotations

import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PEAK_TFLOPS = 989.0
PEAK_SOURCE = "H100/H200 SXM dense bf16 (989 TFLOP/s)"
GPU_STEPS = 30
SMOKE_STEPS = 10  # enough for a median over steps 2+; CI time matters more than CPU figures
GPU_MODEL = dict(hidden_size=2048, intermediate_size=8192, num_layers=12, num_heads=32, num_kv_heads=8)
SMOKE_MODEL = dict(hidden_size=64, intermediate_size=128, num_layers=2, num_heads=4, num_kv_heads=2)
GPU_TRAINING = dict(seq_length=2048, global_batch_size=32, micro_batch_size=2, precision="bf16-mixed")
SMOKE_TRAINING = dict(seq_length=64, global_batch_size=4, micro_batch_size=1, precision="32")
# The throughput settings of the real config's 8B family (config/config.yaml).
GPU_PARALLELISM = {"tensor": 1, "pipeline": 1, "distributed_optimizer": True, "overlap_grad_reduce": True,
                   "overlap_param_gather": True, "grad_reduce_in_fp32": True, "recompute": "none"}


def model_params(shape: dict[str, int], vocab: int) -> dict[str, int]:
    """Parameter counts of the synthetic Llama (untied embeddings and head)."""
    h, ffn, layers = shape["hidden_size"], shape["intermediate_size"], shape["num_layers"]
    head_dim = h // shape["num_heads"]
    attn = h * head_dim * (shape["num_heads"] + 2 * shape["num_kv_heads"]) + shape["num_heads"] * head_dim * h
    per_layer = attn + 3 * h * ffn + 2 * h
    total = 2 * vocab * h + layers * per_layer + h
    return {"total": total, "input_embedding": vocab * h}


def flops_per_token(params: dict[str, int], shape: dict[str, int], seq_length: int) -> float:
    return 6.0 * (params["total"] - params["input_embedding"]) + 12.0 * shape["num_layers"] * shape["hidden_size"] * seq_length


def mfu(tokens_per_s_per_gpu: float, flops: float) -> float:
    return tokens_per_s_per_gpu * flops / (PEAK_TFLOPS * 1e12)


def scalars(report: dict[str, Any]) -> dict[str, Any]:
    """The figures of a gate report (numbers, flags, names), without token lists or paths."""
    return {k: v for k, v in report.items()
            if isinstance(v, (int, float, bool)) or (isinstance(v, str) and not v.startswith("/"))}


def figures_line(report: dict[str, Any]) -> str:
    """The numeric figures of a gate report on one line (whatever fields the gate records)."""
    return ", ".join(f"{k} {v:.6g}" if isinstance(v, float) else f"{k} {v}" for k, v in scalars(report).items()
                     if isinstance(v, (int, float)) and not isinstance(v, bool))


def environment() -> dict[str, Any]:
    import torch

    env = {"python": platform.python_version(), "torch": torch.__version__, "cuda": torch.version.cuda,
           "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"}
    for dist in ("nemo_toolkit", "megatron-core", "transformers", "lightning", "numpy"):
        try:
            from importlib.metadata import version

            env[dist] = version(dist)
        except Exception:  # not installed: record it as missing rather than stop the check
            env[dist] = None
    try:
        import transformer_engine  # noqa: F401
        env["transformer_engine"] = True
    except ImportError:
        env["transformer_engine"] = False
    return env


def write_result(result: dict[str, Any], path: Path, t_start: float) -> None:
    """The check's one JSON: every figure so far; `passed` only when all three gates passed."""
    result["seconds"]["total"] = round(time.time() - t_start, 1)
    result["passed"] = len(result["gates"]) == 3 and all(result["gates"].values())
    path.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")


def main(out: Path, smoke: bool) -> int:
    t_start = time.time()
    out.mkdir(parents=True, exist_ok=True)
    result_path = out / "gpu_check.json"
    result_path.unlink(missing_ok=True)
    result: dict[str, Any] = {"mode": "cpu_smoke" if smoke else "gpu", "gpu_figures": not smoke,
                              "seconds": {}, "gates": {}}
    try:
        run_pipeline(out, smoke, result, t_start)
    except BaseException as exc:  # a crash still leaves the figures gathered so far
        result["error"] = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        write_result(result, result_path, t_start)
    print(f"gpu_check: {'PASS' if result['passed'] else 'FAIL'} gates {result['gates']}; figures in {result_path}",
          flush=True)
    return 0 if result["passed"] else 1


def run_pipeline(out: Path, smoke: bool, result: dict[str, Any], t_start: float) -> None:
    from model_fixtures import write_fixture_shard  # tests/models (on PYTHONPATH via gpu_check.sh)
    from morphcpt.errors import MorphcptError
    from morphcpt.models.export import export_checkpoint
    from morphcpt.models.nemo_io import import_nemo, import_parity
    from morphcpt.models.synthetic import write_synthetic_model
    from morphcpt.models.train import make_spec, run_training
    from morphcpt.testing import tagalog_texts
    from morphcpt.yamlio import load_yaml

    parity = load_yaml(REPO / "config" / "config.yaml")["parity"]
    shape = SMOKE_MODEL if smoke else GPU_MODEL
    result["environment"] = environment()

    def stamp(stage: str, t0: float) -> None:
        result["seconds"][stage] = round(time.time() - t0, 1)
        print(f"[gpu_check {time.time() - t_start:5.0f}s] {stage} done in {result['seconds'][stage]:.1f}s", flush=True)

    def gate(name: str, passed: bool, line: str, figures: dict[str, Any]) -> None:
        result["gates"][name] = passed
        result[name] = figures
        print(f"GATE {name}: {'PASS' if passed else 'FAIL'} {line}", flush=True)

    def failed(name: str, exc: Exception, report: Path) -> None:
        """A failed gate: its message, plus the figures of the report it left, if any."""
        figures = scalars(json.loads(report.read_text())) if report.is_file() else {}
        gate(name, False, str(exc), {**figures, "error": str(exc)})

    print(f"gpu_check: {result['environment']}", flush=True)
    t0 = time.time()
    # bf16-stored on GPU like the real model; fp32 on CPU (NeMo cannot run a bf16 forward there).
    hf = write_synthetic_model(out / "hf", arch="llama", seed=0, dtype="float32" if smoke else "bfloat16", **shape)
    vocab = json.loads((hf / "config.json").read_text())["vocab_size"]
    params = model_params(shape, vocab)
    result["model"] = {**shape, "vocab_size": vocab, "params": params["total"],
                       "dtype": "float32" if smoke else "bfloat16"}
    stamp("write_model", t0)

    t0 = time.time()
    nemo = import_nemo(hf, out / "nemo", {"arch": "llama"})
    stamp("import", t0)

    t0 = time.time()
    try:
        rep = import_parity(hf, nemo, parity, out / "import_parity.json", {"arch": "llama"})
        gate("import_parity", True, figures_line(rep), scalars(rep))
    except MorphcptError as exc:
        failed("import_parity", exc, out / "import_parity.json.failed")
    stamp("import_parity", t0)

    texts = tagalog_texts()
    half = len(texts) // 2
    prefixes = [write_fixture_shard(out / "shards" / "chunk_000", hf, texts[:half], chunk="000"),
                write_fixture_shard(out / "shards" / "chunk_001", hf, texts[half:], chunk="001")]
    max_steps = SMOKE_STEPS if smoke else GPU_STEPS
    training = dict(SMOKE_TRAINING if smoke else GPU_TRAINING, max_steps=max_steps, lr=1e-4, min_lr=1e-5,
                    warmup_steps=3, checkpoint_every=max_steps,
                    step0_loss_tolerance=1e-4 if smoke else 0.01)  # fp32 smoke: exact; bf16 on a GPU: 1%
    gpus = 0 if smoke else 1
    spec = make_spec(family={"arch": "llama", "parallelism": {**GPU_PARALLELISM, "gpus": gpus}}, nemo_dir=nemo,
                     hf_dir=hf, shard_files=[str(p) + e for p in prefixes for e in (".bin", ".idx", ".json")],
                     train_dir=out / "train", checkpoint_dir=out / "train" / "checkpoints", training=training,
                     seed=7, gpus=gpus, threads=2 if smoke else 8)
    result["training"] = {"spec": {k: spec[k] for k in ("training", "tensor", "pipeline", "parallel_settings", "gpus")
                                   if k in spec}}
    t0 = time.time()
    trained = False
    # Trains even after a failed import gate, so one run on a lent device yields every figure.
    try:
        summary = run_training(spec, out / "train" / "train.done", out / "train" / "metrics.json")
        step0 = summary["step0_gate"]
        gate("step0_gate", bool(step0["passed"]), figures_line(step0), scalars(step0))
        trained = True
        steps = summary["steps"]
        # Step 0 and 1 include warm-up (allocations, kernel selection): median over steps 2+.
        per_gpu = [s["tokens_per_s"] / max(1, gpus) for s in steps[2:] if s.get("tokens_per_s")]
        tokens_per_s = statistics.median(per_gpu)
        flops = flops_per_token(params, shape, training["seq_length"])
        result["training"].update(
            steps=len(steps), loss_first=steps[0]["loss"], loss_last=steps[-1]["loss"],
            tokens_per_step=training["global_batch_size"] * training["seq_length"],
            tokens_per_s_per_gpu_median=round(tokens_per_s, 1), flops_per_token=flops,
            mfu=float(f"{mfu(tokens_per_s, flops):.4g}"), mfu_peak_tflops=PEAK_TFLOPS, mfu_peak=PEAK_SOURCE,
            step_seconds_median=round(statistics.median(
                training["global_batch_size"] * training["seq_length"] / s["tokens_per_s"]
                for s in steps[2:] if s.get("tokens_per_s")), 3))
        print(f"TRAIN {len(steps)} steps, loss {steps[0]['loss']:.4f} -> {steps[-1]['loss']:.4f}; "
              f"{tokens_per_s:.0f} tokens/s/GPU (median of steps 2+); MFU {100 * mfu(tokens_per_s, flops):.1f}% "
              f"of {PEAK_SOURCE}{' (CPU smoke: not a GPU figure)' if smoke else ''}", flush=True)
    except MorphcptError as exc:
        failed("step0_gate", exc, out / "train" / "step0_gate.json")
    stamp("train", t0)

    t0 = time.time()
    if trained:
        try:
            rep = export_checkpoint(out / "train" / "checkpoints", max_steps, training["global_batch_size"],
                                    out / "export" / f"step_{max_steps}", hf, parity,
                                    out / "export_parity.json")
            gate("export_parity", True, figures_line(rep), scalars(rep))
        except MorphcptError as exc:
            failed("export_parity", exc, out / "export_parity.json.failed")
    stamp("export", t0)


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3) or (len(sys.argv) == 3 and sys.argv[2] != "--cpu-smoke"):
        sys.exit("usage: python scripts/gpu_check_run.py OUT [--cpu-smoke]")
    sys.exit(main(Path(sys.argv[1]).resolve(), smoke=len(sys.argv) == 3))
