"""Peak memory of a real tokenize job against the bound `morphcpt.shards.memory` declares (a
script, not a test: peak RSS depends on the allocator and on what else the machine runs).

    python benchmarks/tokenize_memory.py [--megabytes 1 2] [--mode patok]

For each size, one chunk of a short document plus one document of that many MB of Tagalog text
(the project's corpus sentences repeated) is tokenized in a fresh process with the real Llama-3
tokenizer, exactly as the tokenize rule does (`morphcpt.shards.tokenize_chunk`); the script prints
the peak RSS, the bound `check_tokenize_memory` gives for that chunk, and their ratio. Target:
peak / bound < 1 (the bound is what a tokenize job is checked against before any work).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from morphcpt.assets import llama3_tokenizer_dir  # noqa: E402
from morphcpt.shards.memory import check_tokenize_memory  # noqa: E402
from morphcpt.testing import tagalog_texts  # noqa: E402

# VmHWM, the peak RSS of this process's own address space. Not getrusage's ru_maxrss: Linux keeps
# that across execve, so a child started by a large parent (pytest after NeMo: ~1.5 GB) reports the
# parent's size, not its own peak.
_MEASURE = r"""
import sys
from morphcpt.shards import tokenize_chunk
chunk, tok, out, mode = sys.argv[1:5]
params = {"vanilla": {}, "stochastok": {"expand_prop": 0.1}, "patok": {"cut_prop": 0.8, "expand_prop": 0.1}}
tokenize_chunk(chunk, tok, out, mode, {mode: params[mode]}, 0, "000", progress=False)
hwm_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
print(hwm_kb // 1024)
"""


def long_text(megabytes: float) -> str:
    words = " ".join(tagalog_texts())
    return " ".join([words] * int(megabytes * 1e6 / (len(words) + 1) + 1))


def measure(megabytes: float, mode: str, workdir: Path) -> dict:
    chunk = workdir / f"chunk_{megabytes:g}MB.jsonl"
    chunk.write_text("".join(json.dumps({"text": t}) + "\n" for t in ["Maikling dokumento.", long_text(megabytes)]))
    src = str(Path(__file__).resolve().parents[1] / "src")
    proc = subprocess.run([sys.executable, "-c", _MEASURE, str(chunk), str(llama3_tokenizer_dir()),
                           str(workdir / mode / chunk.stem), mode], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": src}, check=False)
    if proc.returncode:
        raise SystemExit(f"tokenize of {chunk} failed:\n{proc.stderr[-2000:]}")
    peak = int(proc.stdout.split()[-1])
    bound = check_tokenize_memory(chunk, None, 1, 256)
    return {"megabytes": megabytes, "mode": mode, "peak_mb": peak, "bound_mb": bound, "ratio": peak / bound}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, nargs="+", default=[1.0, 2.0])
    parser.add_argument("--mode", default="patok", choices=["vanilla", "stochastok", "patok"])
    args = parser.parse_args()
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        for mb in args.megabytes:
            row = measure(mb, args.mode, Path(tmp))
            verdict = "ok" if row["ratio"] < 1 else "FAIL"
            failed |= verdict == "FAIL"
            print(f"{args.mode} document of {mb:g} MB: peak {row['peak_mb']} MB, bound {row['bound_mb']} MB, "
                  f"peak/bound {row['ratio']:.2f} {verdict}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
