"""`morphcpt segment`: tokenize one JSONL file with vanilla / stochastok / patok.

Input lines are `{"text": ...}`, read and checked exactly as the shards read chunk lines (blank
lines skipped, a UTF-8 byte order mark accepted, empty or non-UTF-8 text refused at file:line);
output lines are `{"ids": [...], "counters": {...}}` in the same order, without bos/eos. The
document on line L uses document_rng(seed, chunk, L - 1), as in the shard of that chunk, so the
output does not depend on batching. The output is written to a temporary file and renamed when
complete, with the mode the umask gives new files.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

from morphcpt.errors import MorphcptError
from morphcpt.fileio import apply_umask

BATCH_DOCUMENTS = 256
SUMMED_COUNTERS = ("tokens_in", "tokens_out", "attempts", "splits", "affix_splits", "affix_preserved",
                   "words_segmentable", "words_cut")


def parse_sets(pairs: list[str] | None) -> dict[str, float]:
    """`key=value` strings -> {key: float(value)}; a malformed pair is a one-line error."""
    params: dict[str, float] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise MorphcptError(f"--set {pair!r}: expected key=value, e.g. --set expand_prop=0.1")
        try:
            params[key.strip()] = float(value)
        except ValueError as exc:
            raise MorphcptError(f"--set {pair!r}: {value!r} is not a number") from exc
    return params


def read_documents(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of every record; a bad line is an error naming file:line."""
    from morphcpt.corpus import iter_jsonl_texts

    if not Path(path).is_file():
        raise MorphcptError(f"{path}: input file not found")
    documents = []
    for line_no, text, kind in iter_jsonl_texts(path):
        if kind is not None:
            raise MorphcptError(f"{path}:{line_no}: bad input line ({kind.replace('_', ' ')}); each line must be a "
                                "JSON object with a non-empty UTF-8 string 'text' (what shards accept); fix or remove it")
        documents.append((line_no, text))
    return documents


def segment_texts(adapter, proc, texts: list[str], seed: int, chunk: int = 0, first_index: int = 0,
                  doc_indices: list[int] | None = None):
    """Yield (ids, counters) per text; text i uses document_rng(seed, chunk, doc_indices[i]), by default
    first_index + i."""
    from morphcpt.tokenization.modes import document_rng

    if doc_indices is None:
        doc_indices = range(first_index, first_index + len(texts))
    for batch_start in range(0, len(texts), BATCH_DOCUMENTS):
        batch = texts[batch_start:batch_start + BATCH_DOCUMENTS]
        for offset, ids in enumerate(adapter.encode_batch(batch)):
            yield proc(ids, document_rng(seed, chunk, doc_indices[batch_start + offset]))


def add_arguments(parser) -> None:
    parser.add_argument("--tokenizer", required=True, type=Path, help="HF fast-tokenizer folder (tokenizer.json)")
    parser.add_argument("--mode", required=True, choices=["vanilla", "stochastok", "patok"])
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", dest="sets",
                        help="mode parameter, e.g. expand_prop=0.1 (repeatable; defaults from docs/design.md §1)")
    parser.add_argument("--seed", type=int, default=0, help="global seed (default 0)")
    parser.add_argument("--chunk", type=int, default=0, help="chunk id mixed into each document's seed (default 0)")
    parser.add_argument("--input", required=True, type=Path, help="JSONL, one {\"text\": ...} per line")
    parser.add_argument("--output", required=True, type=Path, help="JSONL, one {\"ids\": [...], \"counters\": {...}} per line")
    parser.add_argument("--cache-dir", type=Path, default=None, help="split-table cache (default .cache/morphcpt/split_tables)")


def run(args) -> int:
    from morphcpt.tokenization import TokenizerAdapter, make_processor

    if args.seed < 0 or args.chunk < 0:
        raise MorphcptError("--seed and --chunk must be non-negative integers")
    started = time.perf_counter()
    params = parse_sets(args.sets)
    documents = read_documents(args.input)
    texts, doc_indices = [t for _, t in documents], [line_no - 1 for line_no, _ in documents]
    adapter = TokenizerAdapter.from_dir(args.tokenizer)
    proc = make_processor(adapter, args.mode, params, cache_dir=args.cache_dir)

    totals = dict.fromkeys(SUMMED_COUNTERS, 0)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{args.output.name}-", dir=args.output.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            for ids, counters in segment_texts(adapter, proc, texts, args.seed, args.chunk, doc_indices=doc_indices):
                out.write(json.dumps({"ids": ids, "counters": counters}) + "\n")
                for key in SUMMED_COUNTERS:
                    totals[key] += counters.get(key, 0)
        apply_umask(tmp)  # mkstemp made it 0600
        os.replace(tmp, args.output)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    ratio = totals["tokens_out"] / totals["tokens_in"] if totals["tokens_in"] else 1.0
    summary = {"documents": len(texts), "mode": args.mode, "params": proc.params, "seed": args.seed, **totals,
               "ratio": round(ratio, 6), "seconds": round(time.perf_counter() - started, 3)}
    print(f"morphcpt segment: {args.output}: " + json.dumps(summary), file=sys.stderr)
    return 0
