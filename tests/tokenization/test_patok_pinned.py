"""Patok's exact output pinned: a hash of its ids and counters on a fixed text and seed, both
tokenizer styles. Speed work on patok.py/cutter.py (caches, batching) must not change a single id;
the hashes were computed with the code before the speed-ups of 2026-12-02 (issue 21 item 4).

If a change is meant to change Patok's output (new cutter rules, a rebuilt lexicon), the shards
change too: update the pins below in the same commit and say so."""

from __future__ import annotations

import hashlib
import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from morphcpt.tokenization.cli import segment_texts
from morphcpt.tokenization.cutter import CUTTABLE_WORD_RE
from morphcpt.tokenization.patok import ASCII_WORD_RE

# (tokenizer vocabulary fingerprint, sha256 of the output) per style; the fingerprint guards the
# pin against a different tokenizer (the SentencePiece stand-in is trained here, deterministically)
PINNED = {
    "llama3": ("53907596f0e7d2eebe516402979e9b6c0cd2f41eb193bc89c1e5f803f980cb96",
               "ca76ce30a4d6575a1c24d77fd6b0fff086e1f7476283182fddf75f3ee158728b"),
    "sentencepiece": ("470f0bc3089d57912280bf02119ea19736646c7c4a40a02411ee56fcf87ce670",
                      "2f8a7f1511d1170cf190858622df9feb83a6c4756e55b8e3ad26b3611351ade7"),
}
# non-ASCII text before and inside words, hyphens, capitals, a special token's text, repeated words
EXTRA_TEXTS = [
    "ñ kumain 😀 nagluto 日本語 pinakamataas ñañaña Nagluluto si Maria ng mag-aral araw-araw.",
    "<|begin_of_text|> Kinain niya ang pinakamasarap na pagkain; ipinagluto, ipinagluluto, nakipag-usap.",
]


def _texts(tagalog_docs: list[str]) -> list[str]:
    return tagalog_docs[:24] + EXTRA_TEXTS


@pytest.mark.parametrize("style", ["llama3", "sentencepiece"])
def test_patok_output_is_pinned(style, request, processors, tagalog_docs):
    adapter = request.getfixturevalue("llama3_adapter" if style == "llama3" else "sp_adapter")
    fingerprint, pinned = PINNED[style]
    assert adapter.fingerprint == fingerprint, f"{style}: not the tokenizer the pin was computed with"
    for caches in ("cold", "warm"):  # the caches of words and regions never change the output
        digest = hashlib.sha256()
        for params in ({}, {"cut_prop": 1.0, "expand_prop": 0.0}):
            proc = processors(adapter, "patok", params)
            if caches == "cold":
                proc.clear_caches()
            for seed in (0, 1234):
                for ids, counters in segment_texts(adapter, proc, _texts(tagalog_docs), seed=seed, chunk=3):
                    digest.update(json.dumps([ids, counters], sort_keys=True).encode())
        assert digest.hexdigest() == pinned, (
            f"{style} ({caches} caches): Patok's output changed (sha256 {digest.hexdigest()}); if that is intended, "
            "update PINNED")


# the plain definition of a cuttable word (cutter.py): hyphenated, or >= 4 letters
PLAIN_CUTTABLE_WORD_RE = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+)+|[^\W\d_]{4,}")


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.text(alphabet="abkmZ-_1 .'\nñÑé日😀²\u0301", max_size=40))
def test_fast_word_patterns_find_the_plain_definitions_words(text):
    """CUTTABLE_WORD_RE (anchored, possessive) and, on ASCII, ASCII_WORD_RE (in bytes) find the same
    spans as the plain pattern."""
    plain = [m.span() for m in PLAIN_CUTTABLE_WORD_RE.finditer(text)]
    assert [m.span() for m in CUTTABLE_WORD_RE.finditer(text)] == plain
    if text.isascii():
        assert [m.span() for m in ASCII_WORD_RE.finditer(text.encode())] == plain
    ascii_text = text.encode("ascii", errors="ignore")
    assert ([m.span() for m in ASCII_WORD_RE.finditer(ascii_text)]
            == [m.span() for m in PLAIN_CUTTABLE_WORD_RE.finditer(ascii_text.decode())])
