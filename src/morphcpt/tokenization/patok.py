"""Patok: every word (letters, hyphens inside) that the cutter (cutter.py) segments is, with
probability cut_prop and independently of other words, cut at its morpheme boundaries: the tokens
covering the word are replaced by the encodings of its pieces, each piece the word's own bytes (with
the whole tokens around it, e.g. the leading space of ` nagluto` stays on ` nag`), never decoded ids
of a changed sequence. A word whose tokens hold a special token, part of a character, or a token
already replaced is left alone. Then StochasTok with expand_prop over the result, never splitting
affix tokens (affixes.affix_token_ids). One uniform draw per segmentable word, then the expansion's
draws: the output is a function of (ids, seed, chunk, document index) only.

Speed (docs/design.md §4, throughput target >= 0.4 x vanilla): the per-document work is a few
C-level passes over the ids (bytes, byte offsets) plus Python work per word found, so everything
per word is cached by pure functions of its key: word -> cuts (the cutter's cache; for ASCII
documents, whose words are found in the bytes themselves, a bytes-keyed copy), and (region bytes,
word offset in it, cuts) -> new ids. Caches never change the output (tests/tokenization/
test_patok_pinned.py pins it).
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from itertools import accumulate, compress

import numpy as np

from morphcpt.errors import MorphcptError
from morphcpt.tokenization.adapter import SPECIAL, TokenizerAdapter
from morphcpt.tokenization.affixes import affix_token_ids
from morphcpt.tokenization.cutter import CUTTABLE_WORD_RE, Cutter, default_cutter, text_cuts
from morphcpt.tokenization.params import counters
from morphcpt.tokenization.split_table import SplitTable
from morphcpt.tokenization.stochastok import Expander

_PIECE_CACHE_LIMIT = 200_000
# CUTTABLE_WORD_RE on ASCII bytes: for ASCII, str's [^\W\d_] is exactly [A-Za-z]. A match starts only
# where a letter run starts and never backtracks (possessive runs): the same matches, found faster.
ASCII_WORD_RE = re.compile(rb"(?<![A-Za-z])(?:[A-Za-z]++(?:-[A-Za-z]++)+|[A-Za-z]{4,})")


class PatokProcessor:
    """Patok: each word the cutter segments is, with probability cut_prop, cut at its morpheme
    boundaries (pieces re-encoded from the word's own bytes); then StochasTok over the result,
    never splitting affix tokens."""

    mode = "patok"

    def __init__(self, adapter: TokenizerAdapter, params: dict, table: SplitTable, cutter: Cutter | None = None):
        self.adapter, self.params, self.table = adapter, params, table
        self.cutter = cutter or default_cutter()
        self.inventory = self.cutter.inventory
        self.affix_ids = affix_token_ids(adapter.token_bytes, adapter.kinds, self.inventory)
        self.expand = Expander(adapter, table, forbidden=self.affix_ids)
        self.special_flags = [int(k == SPECIAL) for k in adapter.kinds]
        self.special_set = frozenset(i for i, flag in enumerate(self.special_flags) if flag)
        # one byte per id (0/1): a table of vocab_size bytes stays in the CPU cache, a list of as many
        # pointers does not
        self.affix_flags = bytes(int(i in self.affix_ids) for i in range(adapter.vocab_size))
        self._piece_cache: dict[bytes, list[int]] = {}
        # (region bytes, the word's byte offset in it, the word's cut offsets) -> new ids: a pure
        # function of its key
        self._region_cache: dict[tuple[bytes, int, tuple[int, ...]], list[int]] = {}
        # ASCII word bytes -> the cutter's cuts (characters = bytes in ASCII)
        self._ascii_word_cache: dict[bytes, tuple[int, ...]] = {}

    def clear_caches(self) -> None:
        """Forget every cached word and region (the output never depends on them; benchmarks start cold)."""
        for cache in (self._piece_cache, self._region_cache, self._ascii_word_cache, self.cutter.cache):
            cache.clear()

    def __getstate__(self):  # processors travel to worker processes: without the caches
        state = dict(self.__dict__)
        for name in ("_piece_cache", "_region_cache", "_ascii_word_cache"):
            state[name] = {}
        return state

    # -- pieces -----------------------------------------------------------------------------------
    def _encode_piece(self, piece: bytes) -> list[int]:
        ids = self._piece_cache.get(piece)
        if ids is None:
            if len(self._piece_cache) > _PIECE_CACHE_LIMIT:
                self._piece_cache.clear()
            ids = self._piece_cache[piece] = self.adapter.encode(piece.decode("utf-8"))
        return ids

    def _resegment_region(self, region: bytes, cuts: tuple[int, ...]) -> list[int]:
        """Ids of region (the bytes of whole tokens) cut at byte offsets cuts, each piece re-encoded."""
        bounds = [0, *cuts, len(region)]
        new = [i for a, b in zip(bounds, bounds[1:]) for i in self._encode_piece(region[a:b])]
        if self.adapter.decode_bytes(new) != region:
            raise MorphcptError(f"{self.adapter.source}: re-encoding {region!r} changed its bytes (tokenizer normalizes text?)")
        return new

    def cut_text(self, text: str) -> list[str]:
        """Text cut at the morpheme boundaries of every word the cutter segments (cut_prop 1)."""
        cuts = text_cuts(text, self.cutter)
        bounds = [0, *cuts, len(text)]
        return [text[a:b] for a, b in zip(bounds, bounds[1:]) if b > a]

    def resegment(self, text: str) -> list[int]:
        """Ids of text with every segmentable word cut at its morpheme boundaries, pieces re-encoded."""
        return [i for piece in self.cut_text(text) for i in self.adapter.encode(piece)]

    # -- the mode ---------------------------------------------------------------------------------
    def _ascii_word_cuts(self, word: bytes) -> tuple[int, ...]:
        if len(self._ascii_word_cache) >= _PIECE_CACHE_LIMIT:
            self._ascii_word_cache.clear()
        cuts = self._ascii_word_cache[word] = self.cutter.word_cuts(word.decode("ascii"))
        return cuts

    def _word_cuts_in(self, doc: bytes) -> tuple[list[tuple[int, int, tuple[int, ...]]], bool]:
        """(byte start, byte end, cut byte offsets inside the word) of each word the cutter segments,
        and whether doc is ASCII."""
        if doc.isascii():  # most documents: words found in the bytes, no decoding
            cached = self._ascii_word_cache.get
            found = []
            for match in ASCII_WORD_RE.finditer(doc):
                cuts = cached(match[0])
                if cuts is None:
                    cuts = self._ascii_word_cuts(match[0])
                if cuts:
                    found.append((match.start(), match.end(), cuts))
            return found, True
        text = doc.decode("utf-8", errors="surrogateescape")  # one char per undecodable byte
        word_cuts = self.cutter.word_cuts
        cached = self.cutter.cache.get
        found = []
        char_pos = byte_pos = 0
        for match in CUTTABLE_WORD_RE.finditer(text):
            word = match.group()
            cuts = cached(word)
            if cuts is None:
                cuts = word_cuts(word)
            if not cuts:
                continue
            start = match.start()
            byte_pos += len(text[char_pos:start].encode("utf-8", errors="surrogateescape"))
            char_pos = start
            if word.isascii():  # offsets in characters are offsets in bytes
                found.append((byte_pos, byte_pos + len(word), cuts))
                continue
            prefix_bytes = [0]
            for ch in word:
                prefix_bytes.append(prefix_bytes[-1] + len(ch.encode("utf-8", errors="surrogateescape")))
            found.append((byte_pos, byte_pos + prefix_bytes[-1], tuple(prefix_bytes[c] for c in cuts)))
        return found, False

    def _new_region(self, key: tuple[bytes, int, tuple[int, ...]]) -> list[int]:
        region, offset, cuts = key
        new = self._resegment_region(region, tuple(offset + c for c in cuts))
        if len(self._region_cache) > _PIECE_CACHE_LIMIT:
            self._region_cache.clear()
        self._region_cache[key] = new
        return new

    def __call__(self, ids: list[int], rng: np.random.Generator) -> tuple[list[int], dict]:
        cut_prop, expand = self.params["cut_prop"], self.params["expand_prop"]
        n = len(ids)
        extra = {"words_segmentable": 0, "words_cut": 0}
        if n == 0:
            return [], counters(0, 0, **extra)
        pieces = list(map(self.adapter.token_bytes.__getitem__, ids))
        doc = b"".join(pieces)
        words, ascii_only = self._word_cuts_in(doc)
        out: list[int] = []
        done = 0  # tokens before this index are in out
        morph_cuts = words_cut = 0
        if words:
            chosen = (rng.random(len(words)) < cut_prop).tolist()
            # Per-document arrays as Python lists: documents are short, and numpy's per-call overhead
            # on ~150-token documents costs more than the work.
            byte_starts = list(accumulate(map(len, pieces), initial=0))
            special_cum = (list(accumulate(map(self.special_flags.__getitem__, ids), initial=0))
                           if not self.special_set.isdisjoint(ids) else None)
            regions = self._region_cache
            for w0, w1, cuts in compress(words, chosen):
                s = bisect_right(byte_starts, w0) - 1  # token holding the word's first byte
                e = bisect_left(byte_starts, w1)  # one past the token holding its last byte
                if s < done or (special_cum is not None and special_cum[e] != special_cum[s]):
                    continue  # a token shared with an earlier cut word, or a special token in the way
                b0 = byte_starts[s]
                region = doc[b0:byte_starts[e]]
                if not ascii_only:
                    try:
                        region.decode("utf-8")  # whole characters only (byte-level tokens can hold part of one)
                    except UnicodeDecodeError:
                        continue
                key = (region, w0 - b0, cuts)
                new = regions.get(key)
                if new is None:
                    new = self._new_region(key)
                out += ids[done:s]
                out += new
                done = e
                words_cut += 1
                morph_cuts += len(cuts)
        out += ids[done:]
        expanded, attempts, splits = self.expand(out, expand, rng)
        extra.update(words_segmentable=len(words), words_cut=words_cut)
        preserved = sum(map(self.affix_flags.__getitem__, expanded))
        return expanded, counters(n, len(expanded), attempts=attempts, splits=splits,
                                   affix_splits=morph_cuts, affix_preserved=preserved, **extra)
