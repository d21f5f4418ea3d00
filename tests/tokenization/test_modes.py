"""Invariants of vanilla / StochasTok / Patok on both tokenizer styles (docs/design.md §4), plus exact checks."""

from __future__ import annotations

import itertools
import math
from itertools import accumulate
from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from morphcpt.errors import MorphcptError
from morphcpt.tokenization import BYTE_FALLBACK, SPECIAL, SplitTable, document_rng, resolve_params
from morphcpt.tokenization.affixes import default_inventory
from morphcpt.tokenization.cutter import text_cuts
from morphcpt.tokenization.stochastok import Expander

MODE_PARAMS = [
    ("vanilla", {}),
    ("stochastok", {"expand_prop": 0.1}),
    ("stochastok", {"expand_prop": 1.0}),
    ("patok", {}),
    ("patok", {"cut_prop": 1.0, "expand_prop": 1.0}),
]
WORDS = ["nagluto", "kumain", "maganda", "gaganda", "naglalaro", "pinakamataas", "ang", "ng", "mga", "sa",
         "Bumili", "SINABI", "um", "in", "mag", "an", "hin", " ", "  ", ".", ",", "\n", "!", "\"", "-", "3,650",
         "😀", "👍🏽", "日本語", "Ελληνικά", "ñ", "é", "<|end_of_text|>", "<bos>", "<eos>", "\u2581"]
TEXTS = st.one_of(
    st.text(max_size=200),
    st.lists(st.sampled_from(WORDS), max_size=80).map("".join),
    st.lists(st.sampled_from(WORDS), max_size=40).map(" ".join),
)
PROPERTY_SETTINGS = settings(max_examples=40, deadline=None, derandomize=True,
                             suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def segments(adapter, ids):
    """Split ids at special tokens: (list of specials, list of byte strings between them)."""
    specials, parts, current = [], [], []
    for i in ids:
        if adapter.kinds[i] == SPECIAL:
            specials.append(i)
            parts.append(adapter.decode_bytes(current))
            current = []
        else:
            current.append(i)
    parts.append(adapter.decode_bytes(current))
    return specials, parts


def check_invariants(adapter, ids, out, counters):
    assert all(isinstance(i, int) and 0 <= i < adapter.vocab_size for i in out)
    assert adapter.decode_bytes(out) == adapter.decode_bytes(ids)  # lossless, in bytes
    assert segments(adapter, out) == segments(adapter, ids)  # specials kept, in place, never made
    byte_tokens_in = Counter(i for i in ids if adapter.kinds[i] == BYTE_FALLBACK)
    assert Counter(i for i in out if adapter.kinds[i] == BYTE_FALLBACK) == byte_tokens_in
    assert counters["tokens_in"] == len(ids) and counters["tokens_out"] == len(out)
    assert counters["ratio"] == pytest.approx(len(out) / len(ids) if ids else 1.0)


@given(text=TEXTS, with_specials=st.booleans(), seed=st.integers(0, 2**32))
@PROPERTY_SETTINGS
def test_invariants_on_any_text(adapter, processors, text, with_specials, seed):
    ids = adapter.encode(text)
    if text.replace("\u2581", " ") == text or adapter.style == "byte_level":
        assert adapter.decode_bytes(ids) == text.encode("utf-8")  # SentencePiece spells `▁` as space
    if with_specials:
        middle = len(ids) // 2
        ids = [adapter.bos_id, *ids[:middle], adapter.eos_id, adapter.bos_id, *ids[middle:], adapter.eos_id]
    for mode, params in MODE_PARAMS:
        proc = processors(adapter, mode, params)
        out, counters = proc(ids, document_rng(seed, 3, 7))
        check_invariants(adapter, ids, out, counters)
        again, again_counters = proc(list(ids), document_rng(seed, 3, 7))
        assert again == out and again_counters == counters  # same seed -> same ids


def test_modes_are_deterministic_per_document_and_vary_with_seed(adapter, processors, tagalog_docs):
    ids = adapter.encode(" ".join(tagalog_docs[:5]))
    for mode in ("stochastok", "patok"):
        proc = processors(adapter, mode)
        first = proc(ids, document_rng(1, 0, 0))[0]
        assert proc(ids, document_rng(1, 0, 0))[0] == first
        others = {tuple(proc(ids, document_rng(*key))[0]) for key in [(2, 0, 0), (1, 1, 0), (1, 0, 1)]}
        assert tuple(first) not in others  # seed, chunk and document index all matter


def _segment_in_worker(args):
    adapter, proc, texts, first = args
    from morphcpt.tokenization.cli import segment_texts

    return list(segment_texts(adapter, proc, texts, seed=5, chunk=2, first_index=first))


def test_output_independent_of_batching_and_workers(llama3_adapter, processors, tagalog_docs, monkeypatch):
    from concurrent.futures import ProcessPoolExecutor
    import multiprocessing

    from morphcpt.tokenization import cli

    proc = processors(llama3_adapter, "patok")
    texts = tagalog_docs[:24]
    whole = list(cli.segment_texts(llama3_adapter, proc, texts, seed=5, chunk=2))
    monkeypatch.setattr(cli, "BATCH_DOCUMENTS", 5)
    assert list(cli.segment_texts(llama3_adapter, proc, texts, seed=5, chunk=2)) == whole
    # two workers, each with half of the documents, in reverse order of submission
    halves = [(llama3_adapter, proc, texts[12:], 12), (llama3_adapter, proc, texts[:12], 0)]
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as pool:
        second, first = pool.map(_segment_in_worker, halves)
    assert first + second == whole


# -- adversarial inputs: each must terminate and keep the invariants ------------------------------

def adversarial_cases(adapter):
    forms = sorted(default_inventory().all_forms)
    specials = [i for i, k in enumerate(adapter.kinds) if k == SPECIAL]
    return {
        "empty": [],
        "one token": adapter.encode("a"),
        "only specials": (specials * 3)[:300],
        "only affixes, spaced": adapter.encode(" ".join(forms * 20)),
        "only affixes, glued": adapter.encode("".join(forms * 20)),
        "capitalised affixes": adapter.encode(" ".join(f.upper() for f in forms * 5)),
        "emoji and scripts": adapter.encode("😀👍🏽🇵🇭 日本語のテキスト 한국어 العربية עברית हिन्दी ไทย " * 20),
        "one long word": adapter.encode("nag" + "la" * 2000 + "ro"),
        "whitespace runs": adapter.encode(" \n\t  " * 300),
    }


@pytest.mark.parametrize("mode, params", MODE_PARAMS)
def test_adversarial_inputs_terminate(adapter, processors, mode, params):
    proc = processors(adapter, mode, params)
    for name, ids in adversarial_cases(adapter).items():
        out, counters = proc(ids, document_rng(0, 0, 0))
        check_invariants(adapter, ids, out, counters)
        if name in ("empty", "only specials"):
            assert out == ids


def test_hundred_thousand_token_document(adapter, processors, tagalog_docs):
    text = " ".join(tagalog_docs)
    ids = adapter.encode(text)
    ids = (ids * (100_000 // len(ids) + 1))[:100_000]
    for mode in ("stochastok", "patok"):
        out, counters = processors(adapter, mode)(ids, document_rng(0, 0, 0))
        assert adapter.decode_bytes(out) == adapter.decode_bytes(ids)
        assert counters["attempts"] >= 10_000


# -- StochasTok and Patok semantics ---------------------------------------------------------------

def test_stochastok_counters_and_expected_ratio(adapter, processors, tagalog_docs):
    proc = processors(adapter, "stochastok", {"expand_prop": 0.1})
    splittable = proc.table.counts > 0
    total_in = total_out = 0
    expected_first_round = 0.0
    for index, text in enumerate(tagalog_docs):
        ids = adapter.encode(text)
        out, c = proc(ids, document_rng(11, 0, index))
        assert c["attempts"] == math.floor(0.1 * len(ids))
        assert c["tokens_out"] == c["tokens_in"] + c["splits"] and c["splits"] <= c["attempts"]
        total_in, total_out = total_in + len(ids), total_out + len(out)
        expected_first_round += c["attempts"] * splittable[ids].mean()
    # each attempt lands on a splittable token with about the document's splittable share
    assert (total_out - total_in) == pytest.approx(expected_first_round, rel=0.12)


def _exact_stochastok_distribution(ids, attempts, table):
    """Enumerate the reference process (uniform position in the growing list, uniform split)."""
    dist = Counter({tuple(ids): 1.0})
    for _ in range(attempts):
        nxt = Counter()
        for seq, prob in dist.items():
            for j, token in enumerate(seq):
                splits = table.splits(token)
                if not splits:
                    nxt[seq] += prob / len(seq)
                for left, right in splits:
                    nxt[seq[:j] + (left, right) + seq[j + 1:]] += prob / len(seq) / len(splits)
        dist = nxt
    return dist


def test_stochastok_matches_the_reference_distribution():
    """The O(1)-per-attempt sampler draws sequences with the reference process's probabilities."""
    # toy vocabulary: 0 'a', 1 'b', 2 'c', 3 'ab', 4 'bc', 5 'abc'
    token_bytes = [b"a", b"b", b"c", b"ab", b"bc", b"abc"]
    splits = {3: [(0, 1)], 4: [(1, 2)], 5: [(0, 4), (3, 2)]}
    counts = [len(splits.get(t, [])) for t in range(6)]
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    pairs = np.array([p for t in range(6) for p in splits.get(t, [])], dtype=np.int32)
    table = SplitTable(offsets, pairs, "toy")
    expand = Expander(SimpleNamespace(token_bytes=token_bytes), table)
    ids = [5, 0, 4]
    exact = _exact_stochastok_distribution(ids, 2, table)
    rng = np.random.default_rng(123)
    runs = 20_000
    seen = Counter(tuple(expand(ids, 2 / 3, rng)[0]) for _ in range(runs))
    assert set(seen) <= set(exact)
    total_variation = 0.5 * sum(abs(seen[s] / runs - p) for s, p in exact.items())
    assert total_variation < 0.02, (total_variation, exact, seen)


def _spans(adapter, ids):
    spans, pos = set(), 0
    for i in ids:
        spans.add((pos, pos + len(adapter.token_bytes[i]), i))
        pos += len(adapter.token_bytes[i])
    return spans


def test_patok_expansion_never_splits_affix_tokens(adapter, processors, tagalog_docs):
    proc = processors(adapter, "patok", {"cut_prop": 0.0, "expand_prop": 1.0})
    ids = adapter.encode(" ".join(tagalog_docs[:10]))
    affix_spans = {s for s in _spans(adapter, ids) if s[2] in proc.affix_ids}
    assert affix_spans
    out, counters = proc(ids, document_rng(0, 0, 0))
    assert counters["splits"] > 0 and counters["affix_splits"] == 0
    assert affix_spans <= _spans(adapter, out)


def _byte_cuts(text):
    """The cutter's cut points in text, as byte offsets."""
    return {len(text[:c].encode("utf-8")) for c in text_cuts(text)}


def _boundaries(adapter, ids):
    return set(accumulate(len(adapter.token_bytes[i]) for i in ids))


def test_patok_cuts_every_segmentable_word_at_cut_prop_one(adapter, processors, tagalog_docs):
    proc = processors(adapter, "patok", {"cut_prop": 1.0, "expand_prop": 0.0})
    text = " ".join(tagalog_docs[:10])
    ids = adapter.encode(text)
    out, counters = proc(ids, document_rng(0, 0, 0))
    cuts = _byte_cuts(text)
    assert cuts and counters["words_cut"] == counters["words_segmentable"] > 0
    assert counters["affix_splits"] == len(cuts)
    assert cuts <= _boundaries(adapter, out)
    assert adapter.decode_bytes(out) == text.encode("utf-8")


def test_patok_cuts_each_word_with_probability_cut_prop(llama3_adapter, processors):
    """Per word: a segmentable word comes out either canonical or cut at all its morpheme
    boundaries (pieces re-encoded), and about cut_prop of the words are cut."""
    a = llama3_adapter
    words = ["kumain", "pinakamataas", "basahin", "magsumikap", "tumatakbo", "kinain", "sinabi", "mabubuti"]
    occurrences = words * 60
    text = "".join(" " + w for w in occurrences)
    proc = processors(a, "patok", {"cut_prop": 0.3, "expand_prop": 0.0})
    out, counters = proc(a.encode(text), document_rng(4, 0, 0))
    assert counters["words_segmentable"] == len(occurrences)
    boundaries = sorted(_boundaries(a, out))

    def inside(bounds, lo, hi):
        return {b - lo for b in bounds if lo < b < hi}

    seen_cut = 0
    start = 0
    for word in occurrences:
        end = start + 1 + len(word)
        canonical = inside(_boundaries(a, a.encode(" " + word)), 0, 1 + len(word))
        cut = inside(_boundaries(a, proc.resegment(" " + word)), 0, 1 + len(word))
        assert cut != canonical  # every word here shows its cut
        actual = inside(boundaries, start, end)
        assert actual in (canonical, cut), word
        seen_cut += actual == cut
        start = end
    assert seen_cut == counters["words_cut"]
    n, p = len(occurrences), 0.3
    assert abs(seen_cut - n * p) < 4 * (n * p * (1 - p)) ** 0.5


def test_patok_at_cut_prop_zero_without_expansion_is_vanilla(adapter, processors, tagalog_docs):
    proc = processors(adapter, "patok", {"cut_prop": 0.0, "expand_prop": 0.0})
    ids = adapter.encode(" ".join(tagalog_docs[:10]))
    out, counters = proc(ids, document_rng(0, 0, 0))
    assert out == ids and counters["words_cut"] == 0 and counters["words_segmentable"] > 0


def test_patok_cuts_land_on_the_right_bytes_after_multibyte_characters(adapter, processors):
    """Word offsets are found in text, cuts are placed in bytes: non-ASCII text before a word must
    not shift them; a word inside partial-character tokens is left alone, losslessly."""
    text = "ñ kumain 😀 nagluto 日本語 pinakamataas ñañaña " * 20
    ids = adapter.encode(text)
    proc = processors(adapter, "patok", {"cut_prop": 1.0, "expand_prop": 0.0})
    out, counters = proc(ids, document_rng(0, 0, 0))
    assert adapter.decode_bytes(out) == text.encode("utf-8")
    assert counters["words_cut"] == 60
    assert _byte_cuts(text) <= _boundaries(adapter, out)


# -- params and seeds -----------------------------------------------------------------------------

def test_params_defaults_and_errors():
    assert resolve_params("patok", {}) == {"cut_prop": 0.8, "expand_prop": 0.1}
    assert resolve_params("stochastok", None) == {"expand_prop": 0.1}
    assert resolve_params("stochastok", {"expand_prop": 0.25}) == {"expand_prop": 0.25}
    for mode, params, message in [
        ("stochastok", {"contract_prop": 0.1}, "unknown parameter"),
        ("vanilla", {"expand_prop": 0.1}, "unknown parameter"),
        ("patok", {"expand_prop": 1.5}, r"in \[0, 1\]"),
        ("patok", {"expand_prop": "0.1"}, r"in \[0, 1\]"),
        ("bpe-dropout", {}, "unknown tokenization mode"),
    ]:
        with pytest.raises(MorphcptError, match=message):
            resolve_params(mode, params)


def test_document_rng_depends_on_its_integers_only():
    draws = {key: document_rng(*key).random() for key in itertools.product((0, 1), (0, 1), (0, 1))}
    assert len(set(draws.values())) == 8
    assert document_rng(1, 0, 1).random() == draws[(1, 0, 1)]
    with pytest.raises(MorphcptError):
        document_rng(-1, 0, 0)
    with pytest.raises(MorphcptError):
        document_rng(1.5, 0, 0)


def test_expanded_ids_are_kept_not_retokenized(adapter, processors, tagalog_docs):
    """The trap: decoding expanded ids and re-tokenizing gives back the canonical ids (no effect)."""
    ids = adapter.encode(tagalog_docs[0])
    for mode, params in [("stochastok", {"expand_prop": 0.5}), ("patok", {"expand_prop": 0.5, "cut_prop": 0.0})]:
        out, counters = processors(adapter, mode, params)(ids, document_rng(0, 0, 0))
        assert len(out) == len(ids) + counters["splits"] > len(ids)
        assert adapter.encode(adapter.decode_bytes(out).decode("utf-8")) == ids != out
