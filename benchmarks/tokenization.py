"""Tokenization speed and realised ratios on the Llama-3 tokenizer (a script, not a test).

    python benchmarks/tokenization.py [--documents 3000] [--repeats 3]

Corpus: Tagalog-like documents generated with a fixed seed from data/tagalog_corpus.jsonl: each
document is 4-12 of the project's sentences, and each word is replaced with probability 0.3 by a
random word of the corpus, so documents are new text with Tagalog's words and affixes.
Measured (best of --repeats, one process, as `morphcpt segment` runs them): split-table build time
(no cache); tokens/s (canonical input tokens per second) of raw batch encoding and of the full
per-document path (batch encode + processor + per-document Generator) for vanilla, StochasTok
p=0.1 and Patok at its defaults (cut_prop 0.8, expand_prop 0.1); the speed ratios and the realised
length ratios. Targets: build < 5 s for 128,256 entries; StochasTok >= 0.5 x vanilla; Patok >= 0.4 x
vanilla (issue 12); realised ratio at p=0.1 within 1.07-1.11.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from morphcpt.assets import llama3_tokenizer_dir  # noqa: E402
from morphcpt.testing import tagalog_texts  # noqa: E402
from morphcpt.tokenization import TokenizerAdapter, build_split_table, make_processor  # noqa: E402
from morphcpt.tokenization.cli import segment_texts  # noqa: E402


def tagalog_like_corpus(documents: int, seed: int = 0) -> list[str]:
    sentences = [s for text in tagalog_texts() for s in re.split(r"(?<=[.!?])\s+", text) if s]
    words = sorted({w for s in sentences for w in s.split()})
    rng = np.random.default_rng(seed)
    docs = []
    for _ in range(documents):
        picked = [sentences[i] for i in rng.integers(0, len(sentences), size=int(rng.integers(4, 13)))]
        out = []
        for sentence in picked:
            tokens = sentence.split()
            swap = rng.random(len(tokens)) < 0.3
            out.append(" ".join(words[int(rng.integers(len(words)))] if s else t for t, s in zip(tokens, swap)))
        docs.append(" ".join(out))
    return docs


def best_of(repeats: int, func):
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=3000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers as JSON here")
    args = parser.parse_args()

    adapter = TokenizerAdapter.from_dir(llama3_tokenizer_dir())
    texts = tagalog_like_corpus(args.documents)
    build_s, table = best_of(args.repeats, lambda: build_split_table(adapter))
    encode_s, encoded = best_of(args.repeats, lambda: adapter.encode_batch(texts))
    tokens = sum(map(len, encoded))

    rows = {"raw batch encode": (encode_s, tokens, None)}
    runs = {}
    for label, mode, params in [
        ("vanilla", "vanilla", {}),
        ("stochastok p=0.1", "stochastok", {"expand_prop": 0.1}),
        ("patok 0.8/0.1", "patok", {"cut_prop": 0.8, "expand_prop": 0.1}),
    ]:
        proc = make_processor(adapter, mode, params, cache_dir=None)

        def run(proc=proc):
            if hasattr(proc, "clear_caches"):
                proc.clear_caches()  # every repeat starts cold: no word or region seen yet
            return sum(c["tokens_out"] for _, c in segment_texts(adapter, proc, texts, seed=1234))

        runs[label] = run
    # repeats interleaved across the paths, best of each: a load change on a shared machine then hits
    # every path alike instead of skewing the ratios
    best = {label: (float("inf"), 0) for label in runs}
    for _ in range(args.repeats):
        for label, run in runs.items():
            start = time.perf_counter()
            tokens_out = run()
            best[label] = min(best[label], (time.perf_counter() - start, tokens_out))
    for label, (seconds, tokens_out) in best.items():
        rows[label] = (seconds, tokens, tokens_out / tokens)

    vanilla_tps = tokens / rows["vanilla"][0]
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    print(f"machine: {cpu}, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; python {platform.python_version()}")
    print(f"corpus: {len(texts)} Tagalog-like documents, {tokens:,} Llama-3 tokens; best of {args.repeats}")
    print(f"split table: {table.vocab_size:,} entries, {len(table):,} splits, built in {build_s:.2f} s (target < 5 s)")
    print()
    print(f"| {'path':<18} | {'tokens/s':>11} | {'x vanilla':>9} | {'len ratio':>9} |")
    print(f"|{'-' * 20}|{'-' * 13}|{'-' * 11}|{'-' * 11}|")
    results = {"split_table_build_s": build_s, "tokens": tokens, "documents": len(texts), "paths": {}}
    for label, (seconds, n, ratio) in rows.items():
        tps = n / seconds
        speed = tps / vanilla_tps
        results["paths"][label] = {"tokens_per_s": tps, "x_vanilla": speed, "length_ratio": ratio}
        ratio_text = f"{ratio:.4f}" if ratio is not None else "-"
        print(f"| {label:<18} | {tps:>11,.0f} | {speed:>9.2f} | {ratio_text:>9} |")
    stochastok = results["paths"]["stochastok p=0.1"]
    patok = results["paths"]["patok 0.8/0.1"]
    checks = {
        "build < 5 s": build_s < 5,
        "stochastok >= 0.5 x vanilla": stochastok["x_vanilla"] >= 0.5,
        "patok >= 0.4 x vanilla": patok["x_vanilla"] >= 0.4,
        "ratio at p=0.1 in 1.07-1.11": 1.07 <= stochastok["length_ratio"] <= 1.11,
    }
    print()
    for name, ok in checks.items():
        print(f"{'PASS' if ok else 'FAIL'}  {name}")
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    speed_failed = not (checks["stochastok >= 0.5 x vanilla"] and checks["patok >= 0.4 x vanilla"])
    if speed_failed and load > 0.5 * cores:
        # the paths are timed one after another: other processes slow some of them more than others
        print(f"note: load average {load:.1f} on {cores} cores while measuring: the x-vanilla ratios are noise "
              "here (seen 0.26-0.77 for Patok on a loaded 2-core machine); rerun on an idle machine before "
              "reading a speed FAIL as a regression (length ratios do not depend on load)")
    results["checks"] = checks
    results["load_average"] = load
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
