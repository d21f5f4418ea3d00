"""`morphcpt tokstats`: tokenization quality of the modes, and of the affix cutter, against gold
morpheme segmentations.

Gold lines: `{"word": "nagluto", "boundaries": [3]}` (character offsets strictly inside the word),
optionally with `"kind"` (`monomorphemic` words are the cutter's false-cut test) and `"frequency"`
(their occurrences in running text). The report, per tokenizer:
- cutter: cut-point precision/recall/F1 of the cutter alone (character offsets, micro-averaged over
  all words) and its false-cut rate: the share of occurrences of the monomorphemic words it cuts;
- per mode (and for the ceiling: the gold pieces re-encoded by the tokenizer), over the
  morphologically complex words (all words when no kinds are given):
  - fertility: tokens per word;
  - boundary precision/recall/F1: token boundaries strictly inside the word vs gold boundaries (in
    bytes, so a boundary inside a multi-byte character is a false positive);
  - affix_preservation: share of gold affix morphemes (a segment whose lower-case text is in the
    affix inventory) that are exactly one token; affix_isolation: share whose both edges are token
    boundaries (the affix may still be several tokens);
  - length_ratio: tokens of the mode / canonical tokens of the whole gold document.
Each word is tokenized as it appears in running text, after a space (`" " + word`, so Llama-3's
`Ġ`-tokens and SentencePiece's `▁`-tokens are the ones measured); the space belongs to the word's
first token. The words are tokenized together as one running document (" w1 w2 ..."), so a mode's
per-document proportions act as they do on real text. Stochastic modes run once per seed
(document_rng(seed, 0, 0)); the report gives the mean over seeds and each seed's values.
The cutter's line also gives its false cuts per monomorphemic word type and its cut recall on the
words whose gold `root` is not in its lexicon. `--benchmark FILE` (repeatable) splits the cutter's
scores into the gold words that are target words of those benchmark files and the others, so a
reader sees whether the cutter favours the benchmark's vocabulary (the files are only read).
`--targets` adds Patok with every word cut and checks the targets of issues 12 and 21 (exit 1 if one fails).
"""

from __future__ import annotations

import io
import json
import re
import sys
from bisect import bisect_left, bisect_right
from itertools import accumulate
from pathlib import Path

from morphcpt.corpus import jsonl_lines
from morphcpt.errors import MorphcptError

METRICS = ("fertility", "boundary_precision", "boundary_recall", "boundary_f1", "affix_preservation", "affix_isolation")


def read_gold(path: Path) -> list[tuple[str, list[int]]]:
    """(word, boundaries) per line; see read_gold_records for the optional kind and frequency."""
    return [(r["word"], r["boundaries"]) for r in read_gold_records(path)]


def read_gold_records(path: Path) -> list[dict]:
    """Gold lines as dicts: word, boundaries, and optional kind (monomorphemic words are the
    false-cut test) and frequency (occurrences in running text, weighting the false-cut rate)."""
    gold = []
    for line_no, record in _json_lines(path):
        word = record.get("word") if isinstance(record, dict) else None
        bounds = record.get("boundaries") if isinstance(record, dict) else None
        if not isinstance(word, str) or not word or not isinstance(bounds, list):
            raise MorphcptError(f"{path}:{line_no}: expected {{\"word\": str, \"boundaries\": [char offsets]}}")
        if not all(isinstance(b, int) and not isinstance(b, bool) and 0 < b < len(word) for b in bounds) or bounds != sorted(set(bounds)):
            raise MorphcptError(f"{path}:{line_no}: boundaries of {word!r} must be increasing offsets strictly inside the word (1..{len(word) - 1})")
        kind = record.get("kind", "")
        frequency = record.get("frequency", 1)
        root = record.get("root", "")
        if not isinstance(kind, str) or not isinstance(root, str) or isinstance(frequency, bool) or not isinstance(frequency, int) or frequency < 1:
            raise MorphcptError(f"{path}:{line_no}: optional 'kind' and 'root' must be strings and 'frequency' a positive integer")
        if kind == "monomorphemic" and bounds:
            raise MorphcptError(f"{path}:{line_no}: {word!r} is marked monomorphemic but has boundaries {bounds}")
        gold.append({"word": word, "boundaries": bounds, "kind": kind, "frequency": frequency, "root": root})
    if not gold:
        raise MorphcptError(f"{path}: no gold words")
    return gold


def _json_lines(path: Path):
    """(line number, parsed JSON) per non-blank line; a byte order mark is accepted; an unreadable
    file, invalid UTF-8 or invalid JSON is an error naming file:line."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise MorphcptError(f"{path}: cannot read ({exc})") from exc
    for line_no, raw in jsonl_lines(io.BytesIO(data)):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise MorphcptError(f"{path}:{line_no}: invalid UTF-8 ({exc.reason} at byte {exc.start})") from exc
        try:
            yield line_no, json.loads(line)
        except json.JSONDecodeError as exc:
            raise MorphcptError(f"{path}:{line_no}: not valid JSON ({exc.msg})") from exc


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


def _gold_document(adapter, gold):
    """Canonical ids of " w1 w2 ..." (each word's canonical ids concatenated, so every word starts on
    a token boundary), each word's canonical ids, and each word's first byte in the document."""
    canonical = adapter.encode_batch([" " + word for word, _ in gold])
    lengths = [len(adapter.decode_bytes(ids)) for ids in canonical]
    for (word, _), length in zip(gold, lengths):
        if length != len(word.encode("utf-8")) + 1:
            raise MorphcptError(f"tokens of {word!r} do not spell ' {word}' (tokenizer normalizes text?)")
    word_starts = [start + 1 for start in accumulate([0, *lengths[:-1]])]  # after each word's space
    return [i for ids in canonical for i in ids], canonical, word_starts


def _scored(gold, word_starts, mask):
    if mask is None:
        return gold, word_starts
    return [g for g, keep in zip(gold, mask) if keep], [w for w, keep in zip(word_starts, mask) if keep]


def tokstats(adapter, mode: str, params: dict, gold, seeds: list[int], cache_dir=None, mask=None) -> dict:
    """Tokenize the gold words as one running document and score each seed's tokenization (on the
    words where mask is true, default all; the others are still part of the document)."""
    from morphcpt.tokenization.affixes import default_inventory
    from morphcpt.tokenization.modes import document_rng, make_processor

    proc = make_processor(adapter, mode, params, cache_dir=cache_dir)
    doc_ids, _, word_starts = _gold_document(adapter, gold)
    scored_gold, scored_starts = _scored(gold, word_starts, mask)
    forms = default_inventory().all_forms
    seeds = seeds if mode != "vanilla" else seeds[:1]
    per_seed = []
    for seed in seeds:
        out, _ = proc(doc_ids, document_rng(seed, 0, 0))
        per_seed.append({"seed": seed, **score_document(adapter, out, scored_gold, scored_starts, forms),
                         "length_ratio": len(out) / len(doc_ids)})
    mean = {m: sum(s[m] for s in per_seed) / len(per_seed) for m in (*METRICS, "length_ratio")}
    return {"mode": mode, "params": proc.params, "tokenizer_fingerprint": adapter.fingerprint, "words": len(scored_gold),
            "affixes": sum(1 for w, b in scored_gold for a, c in zip([0, *b], [*b, len(w)]) if w[a:c].lower() in forms),
            "seeds": seeds, **mean, "per_seed": per_seed}


def ceiling(adapter, gold, mask=None) -> dict:
    """The same scores for the gold segmentation itself, each morpheme re-encoded by the tokenizer
    (the best any cutter can do with this vocabulary: a root may still be several tokens)."""
    from morphcpt.tokenization.affixes import default_inventory

    doc_ids, _, word_starts = _gold_document(adapter, gold)
    ids: list[int] = []
    for word, bounds in gold:
        edges = [0, *bounds, len(word)]
        pieces = [word[a:b] for a, b in zip(edges, edges[1:])]
        pieces[0] = " " + pieces[0]
        ids.extend(i for piece in pieces for i in adapter.encode(piece))
    scored_gold, scored_starts = _scored(gold, word_starts, mask)
    scores = score_document(adapter, ids, scored_gold, scored_starts, default_inventory().all_forms)
    return {**scores, "length_ratio": len(ids) / len(doc_ids)}


def cutter_stats(records: list[dict], cutter=None) -> dict:
    """The cutter alone on the gold words: cut-point precision/recall/F1 (character offsets, micro-
    averaged over all words); the false-cut rates: the share of occurrences (gold `frequency`) and
    the share of word types of the monomorphemic words that it cuts at all; and the cut recall on the
    words whose gold `root` is not in the cutter's lexicon (fewer than two forms carry it)."""
    from morphcpt.tokenization.cutter import default_cutter

    cutter = cutter or default_cutter()
    tp = predicted = gold_total = 0
    mono = mono_cut = 0
    mono_words = mono_words_cut = 0
    unknown_words = unknown_tp = unknown_gold = 0
    for record in records:
        cuts = set(cutter.word_cuts(record["word"]))
        gold = set(record["boundaries"])
        tp += len(cuts & gold)
        predicted += len(cuts)
        gold_total += len(gold)
        if record["kind"] == "monomorphemic":
            mono_words += 1
            mono_words_cut += bool(cuts)
            mono += record["frequency"]
            mono_cut += record["frequency"] if cuts else 0
        elif gold and record.get("root") and cutter.lexicon.roots.get(record["root"].lower(), (0, 0))[0] < 2:
            unknown_words += 1
            unknown_tp += len(cuts & gold)
            unknown_gold += len(gold)
    precision = tp / predicted if predicted else 0.0
    recall = tp / gold_total if gold_total else 0.0
    return {"words": len(records), "cut_precision": precision, "cut_recall": recall,
            "cut_f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
            "monomorphemic_words": mono_words, "monomorphemic_occurrences": mono,
            "false_cut_rate": mono_cut / mono if mono else 0.0,
            "false_cut_type_rate": mono_words_cut / mono_words if mono_words else 0.0,
            "unknown_root_words": unknown_words,
            "unknown_root_recall": unknown_tp / unknown_gold if unknown_gold else None}


QUOTED_RE = re.compile(r'"([^"]+)"')


def benchmark_words(paths: list[Path]) -> set[str]:
    """The target words of benchmark JSONL files: the words quoted in their prompts (`the word
    "nakasagot"`), single-word labels (the answers of production items), and `word`/`root` fields;
    lower case, hyphens kept. A file that cannot be read or parsed is an error naming file:line."""
    from morphcpt.tokenization.cutter import WORD_RE

    words: set[str] = set()

    def texts(node):
        if isinstance(node, str):
            yield node
        elif isinstance(node, dict):
            for value in node.values():
                yield from texts(value)
        elif isinstance(node, list):
            for value in node:
                yield from texts(value)

    for path in paths:
        for line_no, item in _json_lines(path):
            if not isinstance(item, dict):
                raise MorphcptError(f"{path}:{line_no}: expected a JSON object per line")
            for text in texts(item.get("prompts", [])):
                for quoted in QUOTED_RE.findall(text.replace('\\"', '"')):
                    words.update(m.group().lower() for m in WORD_RE.finditer(quoted))
            for key in ("text_en", "text_tl"):
                if isinstance(item.get(key), str):
                    for quoted in QUOTED_RE.findall(item[key].replace('\\"', '"')):
                        words.update(m.group().lower() for m in WORD_RE.finditer(quoted))
            for key in ("label", "word", "root"):
                value = item.get(key)
                if isinstance(value, str) and WORD_RE.fullmatch(value.strip()):
                    words.add(value.strip().lower())
    return words


def split_by_benchmark(records: list[dict], words: set[str], cutter=None) -> dict:
    """cutter_stats on the gold words that are benchmark target words and on the others."""
    inside = [r for r in records if r["word"].lower() in words]
    outside = [r for r in records if r["word"].lower() not in words]
    return {"benchmark_target_words": len(words), "on benchmark target words": cutter_stats(inside, cutter),
            "on other words": cutter_stats(outside, cutter)}


# The targets of issues 12 and 21, checked by --targets: (label, where in the report, comparison, threshold)
TARGETS = (
    ("cutter cut-point F1", ("cutter", "cut_f1"), ">=", 0.92),
    ("cutter recall on words whose root is not in the lexicon", ("cutter", "unknown_root_recall"), ">=", 0.80),
    ("false cuts on monomorphemic word types", ("cutter", "false_cut_type_rate"), "<=", 0.02),
    ("patok boundary F1 (default params)", ("modes", "patok", "boundary_f1"), ">=", 0.58),
    ("patok boundary F1 (every word cut)", ("modes", "patok every word", "boundary_f1"), ">=", 0.65),
)


def report(adapter, records: list[dict], modes: dict[str, dict], seeds: list[int], cache_dir=None,
           benchmark: set[str] | None = None) -> dict:
    """Cutter, ceiling and per-mode scores for one tokenizer. modes: label -> (mode, params).

    All words form the running document; token-level scores are over the morphologically complex
    words (every kind but monomorphemic: their token boundaries inside roots are the tokenizer's,
    not the mode's, and they are the cutter's false-cut test instead)."""
    gold = [(r["word"], r["boundaries"]) for r in records]
    mask = [r["kind"] != "monomorphemic" for r in records]
    result = {"tokenizer": adapter.source, "tokenizer_fingerprint": adapter.fingerprint, "words": len(gold),
              "scored_words": sum(mask), "cutter": cutter_stats(records), "ceiling": ceiling(adapter, gold, mask),
              "modes": {label: tokstats(adapter, mode, params, gold, seeds, cache_dir, mask) for label, (mode, params) in modes.items()}}
    if benchmark is not None:
        result["cutter_by_benchmark"] = split_by_benchmark(records, benchmark)
    return result


def check_targets(result: dict) -> list[tuple[str, float, str, float, bool]]:
    checks = []
    for label, path, op, threshold in TARGETS:
        node = result
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if node is None:
            continue
        checks.append((label, node, op, threshold, node >= threshold if op == ">=" else node <= threshold))
    return checks


def format_table(result: dict) -> str:
    """The report as Markdown: one row per mode plus the ceiling, then the cutter's line."""
    lines = [f"tokenizer: {result['tokenizer']} ({result['words']} gold words; token-level scores on the "
             f"{result['scored_words']} morphologically complex ones)", "",
             "| mode | boundary P | boundary R | boundary F1 | affix preservation | fertility | length ratio |",
             "|---|---|---|---|---|---|---|"]
    rows = [(label, stats) for label, stats in result["modes"].items()] + [("ceiling (gold cuts re-encoded)", result["ceiling"])]
    for label, m in rows:
        lines.append(f"| {label} | {m['boundary_precision']:.3f} | {m['boundary_recall']:.3f} | {m['boundary_f1']:.3f} "
                     f"| {m['affix_preservation']:.3f} | {m['fertility']:.3f} | {m['length_ratio']:.3f} |")
    lines += ["", _cutter_line("cutter", result["cutter"])]
    split = result.get("cutter_by_benchmark")
    if split:
        lines.append(f"benchmark split ({split['benchmark_target_words']:,} target words in the benchmark files):")
        lines += [_cutter_line(f"  {label}", split[label]) for label in ("on benchmark target words", "on other words")]
    return "\n".join(lines)


def _cutter_line(label: str, c: dict) -> str:
    unknown = c["unknown_root_recall"]
    return (f"{label}: {c['words']} words; cut-point P {c['cut_precision']:.3f} R {c['cut_recall']:.3f} F1 {c['cut_f1']:.3f}; "
            f"false cuts on {c['false_cut_type_rate']:.1%} of {c['monomorphemic_words']} monomorphemic word types "
            f"({c['false_cut_rate']:.1%} of their {c['monomorphemic_occurrences']:,} occurrences); recall on "
            f"{c['unknown_root_words']} words whose root is not in the lexicon "
            + ("n/a" if unknown is None else f"{unknown:.3f}"))


def add_arguments(parser) -> None:
    parser.add_argument("--tokenizer", required=True, type=Path, help="HF fast-tokenizer folder")
    parser.add_argument("--mode", action="append", choices=["vanilla", "stochastok", "patok"], dest="modes",
                        help="mode to score (repeatable; default: all three)")
    parser.add_argument("--gold", required=True, type=Path,
                        help='JSONL: {"word": ..., "boundaries": [char offsets], optional "kind", "frequency"}')
    parser.add_argument("--set", action="append", metavar="KEY=VALUE", dest="sets",
                        help="mode parameter, given to every chosen mode that has it (repeatable)")
    parser.add_argument("--seeds", type=int, default=5, help="stochastic modes: average over seeds 0..N-1 (default 5)")
    parser.add_argument("--targets", action="store_true",
                        help="also score Patok with every word cut (cut_prop=1) and check the targets of issues 12 and 21 (exit 1 if one fails)")
    parser.add_argument("--benchmark", action="append", type=Path, default=None, metavar="JSONL",
                        help="benchmark file (repeatable): also report the cutter on the gold words that are its "
                             "target words and on the others (read only to report)")
    parser.add_argument("--output", type=Path, default=None, help="write the JSON here (default: stdout)")
    parser.add_argument("--cache-dir", type=Path, default=None, help="split-table cache")


def run(args) -> int:
    from morphcpt.tokenization import TokenizerAdapter
    from morphcpt.tokenization.cli import parse_sets
    from morphcpt.tokenization.modes import DEFAULT_PARAMS

    if args.seeds < 1:
        raise MorphcptError("--seeds must be at least 1")
    params = parse_sets(args.sets)
    chosen = args.modes or ["vanilla", "stochastok", "patok"]
    unused = [k for k in params if not any(k in DEFAULT_PARAMS[m] for m in chosen)]
    if unused:
        raise MorphcptError(f"--set {', '.join(unused)}: no chosen mode ({', '.join(chosen)}) has this parameter")
    modes = {m: (m, {k: v for k, v in params.items() if k in DEFAULT_PARAMS[m]}) for m in chosen}
    if args.targets:
        if "patok" not in chosen:
            raise MorphcptError("--targets needs --mode patok (or no --mode)")
        modes["patok every word"] = ("patok", {**modes["patok"][1], "cut_prop": 1.0})
    records = read_gold_records(args.gold)
    adapter = TokenizerAdapter.from_dir(args.tokenizer)
    benchmark = benchmark_words(args.benchmark) if args.benchmark else None
    result = report(adapter, records, modes, list(range(args.seeds)), cache_dir=args.cache_dir, benchmark=benchmark)
    failed = False
    if args.targets:
        result["targets"] = []
        for label, value, op, threshold, ok in check_targets(result):
            result["targets"].append({"target": label, "value": value, "op": op, "threshold": threshold, "met": ok})
            failed |= not ok
    text = json.dumps(result, indent=1)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.output.with_name(f".{args.output.name}.tmp")
        tmp.write_text(text + "\n", encoding="utf-8")
        tmp.replace(args.output)
    else:
        sys.stdout.write(text + "\n")
    table = format_table(result)
    for target in result.get("targets", []):
        table += f"\n{'PASS' if target['met'] else 'FAIL'}  {target['target']}: {target['value']:.3f} {target['op']} {target['threshold']}"
    print(table, file=sys.stderr)
    return 1 if failed else 0
