"""`morphcpt tokstats`: tokenization quality of a mode against gold morpheme segmentations.

Gold lines: `{"word": "nagluto", "boundaries": [3]}` (character offsets strictly inside the word).
Each word is tokenized as it appears in running text, after a space (`" " + word`, so Llama-3's
`Ġ`-tokens and SentencePiece's `▁`-tokens are the ones measured); the space belongs to the word's
first token. Metrics, micro-averaged over words:
- fertility: tokens per word;
- boundary precision/recall/F1: token boundaries strictly inside the word vs gold boundaries (in
  bytes, so a boundary inside a multi-byte character is a false positive);
- affix_preservation: share of gold affix morphemes (a segment whose lower-case text is in the
  affix inventory) that are exactly one token; affix_isolation: share whose both edges are token
  boundaries (the affix may still be several tokens).
The words are tokenized together as one running document (" w1 w2 ..."), so a mode's per-document
proportions (floor(p·n) attempts) act as they do on real text rather than on 3-token documents.
Stochastic modes run once per seed (document_rng(seed, 0, 0)); the report gives the mean over
seeds and each seed's values.
"""

from __future__ import annotations

import json
import sys
from bisect import bisect_left, bisect_right
from itertools import accumulate
from pathlib import Path

from morphcpt.errors import MorphcptError

METRICS = ("fertility", "boundary_precision", "boundary_recall", "boundary_f1", "affix_preservation", "affix_isolation")


def read_gold(path: Path) -> list[tuple[str, list[int]]]:
    gold = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise MorphcptError(f"{path}: cannot read as UTF-8 text ({exc})") from exc
    for line_no, line in enumerate(lines, 1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise MorphcptError(f"{path}:{line_no}: not valid JSON ({exc.msg})") from exc
        word = record.get("word") if isinstance(record, dict) else None
        bounds = record.get("boundaries") if isinstance(record, dict) else None
        if not isinstance(word, str) or not word or not isinstance(bounds, list):
            raise MorphcptError(f"{path}:{line_no}: expected {{\"word\": str, \"boundaries\": [char offsets]}}")
        if not all(isinstance(b, int) and not isinstance(b, bool) and 0 < b < len(word) for b in bounds) or bounds != sorted(set(bounds)):
            raise MorphcptError(f"{path}:{line_no}: boundaries of {word!r} must be increasing offsets strictly inside the word (1..{len(word) - 1})")
        gold.append((word, bounds))
    if not gold:
        raise MorphcptError(f"{path}: no gold words")
    return gold


def _char_to_byte(word: str, base: int) -> list[int]:
    """Byte offset in the document of every character offset 0..len(word), the word starting at base."""
    offsets, pos = [base], base
    for ch in word:
        pos += len(ch.encode("utf-8"))
        offsets.append(pos)
    return offsets


def score_document(adapter, ids: list[int], gold: list[tuple[str, list[int]]], word_starts: list[int], affix_forms) -> dict[str, float]:
    """Metrics for one tokenization of the gold document; word i's first byte is word_starts[i]."""
    ends = list(accumulate(len(adapter.token_bytes[i]) for i in ids))
    starts = [0, *ends[:-1]]
    tokens = tp = predicted = gold_total = 0
    affixes = affix_exact = affix_edges = 0
    for (word, bounds), base in zip(gold, word_starts):
        char_to_byte = _char_to_byte(word, base)
        word_start, word_end = char_to_byte[0], char_to_byte[-1]
        first = bisect_right(ends, word_start)  # first token ending after the word starts
        last = bisect_left(ends, word_end)  # token that holds the word's last byte
        inside = range(first, last + 1)
        cuts = {ends[t] for t in inside if word_start < ends[t] < word_end}
        gold_bytes = {char_to_byte[b] for b in bounds}
        tokens += len(inside)
        tp += len(cuts & gold_bytes)
        predicted += len(cuts)
        gold_total += len(gold_bytes)
        edges = [0, *bounds, len(word)]
        boundaries = cuts | {word_start, word_end}
        for a, b in zip(edges, edges[1:]):
            if word[a:b].lower() in affix_forms:
                affixes += 1
                lo, hi = char_to_byte[a], char_to_byte[b]
                t = bisect_left(ends, hi)
                # exactly one token: it ends at the affix's end and starts at its start, or at the
                # space before the word for a word-initial affix (`Ġnag`, `▁nag`)
                affix_exact += t < len(ends) and ends[t] == hi and (starts[t] == lo or (lo == word_start and starts[t] == lo - 1))
                affix_edges += lo in boundaries and hi in boundaries
    precision = tp / predicted if predicted else 0.0
    recall = tp / gold_total if gold_total else 0.0
    return {
        "fertility": tokens / len(gold),
        "boundary_precision": precision,
        "boundary_recall": recall,
        "boundary_f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "affix_preservation": affix_exact / affixes if affixes else 0.0,
        "affix_isolation": affix_edges / affixes if affixes else 0.0,
    }


def tokstats(adapter, mode: str, params: dict, gold, seeds: list[int], cache_dir=None) -> dict:
    """Tokenize the gold words as one running document (" w1 w2 ...", each word's canonical ids
    concatenated, so every word starts on a token boundary) and score each seed's tokenization."""
    from morphcpt.tokenization.affixes import default_inventory
    from morphcpt.tokenization.modes import document_rng, make_processor

    proc = make_processor(adapter, mode, params, cache_dir=cache_dir)
    canonical = adapter.encode_batch([" " + word for word, _ in gold])
    doc_ids = [i for ids in canonical for i in ids]
    lengths = [len(adapter.decode_bytes(ids)) for ids in canonical]
    word_starts = [start + 1 for start in accumulate([0, *lengths[:-1]])]  # after each word's space
    for (word, _), length in zip(gold, lengths):
        if length != len(word.encode("utf-8")) + 1:
            raise MorphcptError(f"tokens of {word!r} do not spell ' {word}' (tokenizer normalizes text?)")
    forms = default_inventory().all_forms
    seeds = seeds if mode != "vanilla" else seeds[:1]
    per_seed = []
    for seed in seeds:
        out, _ = proc(doc_ids, document_rng(seed, 0, 0))
        per_seed.append({"seed": seed, **score_document(adapter, out, gold, word_starts, forms)})
    mean = {m: sum(s[m] for s in per_seed) / len(per_seed) for m in METRICS}
    return {"mode": mode, "params": proc.params, "tokenizer_fingerprint": adapter.fingerprint, "words": len(gold),
            "affixes": sum(1 for w, b in gold for a, c in zip([0, *b], [*b, len(w)]) if w[a:c].lower() in forms),
            "seeds": seeds, **mean, "per_seed": per_seed}


def add_arguments(parser) -> None:
    parser.add_argument("--tokenizer", required=True, type=Path, help="HF fast-tokenizer folder")
    parser.add_argument("--mode", required=True, choices=["vanilla", "stochastok", "patok"])
    parser.add_argument("--gold", required=True, type=Path, help='JSONL: {"word": ..., "boundaries": [char offsets]}')
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", dest="sets", help="mode parameter (repeatable)")
    parser.add_argument("--seeds", type=int, default=5, help="stochastic modes: average over seeds 0..N-1 (default 5)")
    parser.add_argument("--output", type=Path, default=None, help="write the JSON here (default: stdout)")
    parser.add_argument("--cache-dir", type=Path, default=None, help="split-table cache")


def run(args) -> int:
    from morphcpt.tokenization import TokenizerAdapter
    from morphcpt.tokenization.cli import parse_sets

    if args.seeds < 1:
        raise MorphcptError("--seeds must be at least 1")
    params = parse_sets(args.sets)
    gold = read_gold(args.gold)
    adapter = TokenizerAdapter.from_dir(args.tokenizer)
    report = tokstats(adapter, args.mode, params, gold, list(range(args.seeds)), cache_dir=args.cache_dir)
    text = json.dumps(report, indent=1)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.output.with_name(f".{args.output.name}.tmp")
        tmp.write_text(text + "\n", encoding="utf-8")
        tmp.replace(args.output)
    else:
        sys.stdout.write(text + "\n")
    return 0
