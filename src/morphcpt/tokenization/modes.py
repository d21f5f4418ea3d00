"""The three tokenization modes as processors: canonical ids + a seeded Generator -> ids + counters.

StochasTok (DESIGN §4): floor(p·n) attempts, each at a uniform position of the current, growing
sequence; a token with splits is replaced by one of them, chosen uniformly; pieces may split again.
Because the position is uniform over the current tokens, the order in which they are kept does not
matter while sampling: the current tokens live in an unordered list (a split overwrites the left
piece in place and appends the right one, O(1)), each remembering its original position and its
byte offset inside that original token; one sort at the end restores document order. No list is
rebuilt per attempt.

Patok: every word (letters, hyphens inside) that the cutter (cutter.py) segments is, with
probability cut_prop and independently of other words, cut at its morpheme boundaries: the tokens
covering the word are replaced by the encodings of its pieces, each piece the word's own bytes (with
the whole tokens around it, e.g. the leading space of ` nagluto` stays on ` nag`), never decoded ids
of a changed sequence. A word whose tokens hold a special token, part of a character, or a token
already replaced is left alone. Then StochasTok with expand_prop over the result, never splitting
affix tokens (affixes.affix_token_ids). One uniform draw per segmentable word, then the expansion's
draws: the output is a function of (ids, seed, chunk, document index) only.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from itertools import accumulate
from pathlib import Path

import numpy as np

from morphcpt.errors import MorphcptError
from morphcpt.tokenization.adapter import SPECIAL, TokenizerAdapter
from morphcpt.tokenization.affixes import affix_token_ids
from morphcpt.tokenization.cutter import CUTTABLE_WORD_RE, Cutter, default_cutter, text_cuts
from morphcpt.tokenization.split_table import SplitTable, split_table_for

MODES = ("vanilla", "stochastok", "patok")
DEFAULT_PARAMS: dict[str, dict[str, float]] = {
    "vanilla": {},
    "stochastok": {"expand_prop": 0.1},
    "patok": {"cut_prop": 0.8, "expand_prop": 0.1},
}
_PIECE_CACHE_LIMIT = 200_000


def document_rng(seed: int, chunk: int, doc_index: int) -> np.random.Generator:
    """The Generator for one document: a function of (global seed, chunk, document index) only."""
    values = (seed, chunk, doc_index)
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 0 for v in values):
        raise MorphcptError(f"document_rng needs non-negative integers (seed, chunk, doc_index), got {values!r}")
    return np.random.default_rng(np.random.SeedSequence([int(v) for v in values]))


def resolve_params(mode: str, params: dict | None) -> dict[str, float]:
    """Mode params with DESIGN §1 defaults filled in; unknown keys and values outside [0, 1] fail."""
    if mode not in DEFAULT_PARAMS:
        raise MorphcptError(f"unknown tokenization mode {mode!r}; use one of {', '.join(MODES)}")
    given = dict(params or {})
    unknown = sorted(set(given) - set(DEFAULT_PARAMS[mode]))
    if unknown:
        allowed = ", ".join(DEFAULT_PARAMS[mode]) or "none"
        raise MorphcptError(f"mode {mode}: unknown parameter(s) {', '.join(unknown)} (allowed: {allowed})")
    resolved = dict(DEFAULT_PARAMS[mode])
    for key, value in given.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0 or math.isnan(value):
            raise MorphcptError(f"mode {mode}: parameter {key}={value!r} must be a number in [0, 1]")
        resolved[key] = float(value)
    return resolved


def _counters(n_in: int, n_out: int, **extra) -> dict:
    counters = {"tokens_in": n_in, "tokens_out": n_out, "attempts": 0, "splits": 0, "affix_splits": 0, "affix_preserved": 0}
    counters.update(extra)
    counters["ratio"] = n_out / n_in if n_in else 1.0
    return counters


class _Expander:
    """StochasTok over a split table, with a per-processor table of split counts (0 = never split)."""

    def __init__(self, adapter: TokenizerAdapter, table: SplitTable, forbidden: set[int] = frozenset()):
        counts = table.counts.copy()
        if forbidden:
            counts[np.fromiter(forbidden, dtype=np.int64)] = 0
        # Python lists: per-attempt scalar access on lists is several times faster than on arrays.
        self.counts = counts.tolist()
        self.offsets = table.offsets[:-1].tolist()
        self.left = table.pairs[:, 0].tolist()
        self.right = table.pairs[:, 1].tolist()
        self.lengths = [len(b) for b in adapter.token_bytes]
        self.key_base = max(self.lengths) + 1

    def __call__(self, ids: list[int], prop: float, rng: np.random.Generator) -> tuple[list[int], int, int]:
        n = len(ids)
        attempts = math.floor(prop * n)
        if attempts == 0:
            return list(ids), 0, 0
        position_draws = rng.random(attempts).tolist()
        split_draws = rng.random(attempts).tolist()
        counts, offsets, left, right, lengths = self.counts, self.offsets, self.left, self.right, self.lengths
        tokens = list(ids)  # current tokens, unordered: 0..n-1 are the original slots, then appended pieces
        origin: list[int] = []  # for appended pieces: original position
        start: list[int] = []  # for appended pieces: byte offset inside the original token
        size = n
        for pos_u, split_u in zip(position_draws, split_draws):
            j = int(pos_u * size)
            token = tokens[j]
            count = counts[token]
            if not count:
                continue
            row = offsets[token] + int(split_u * count)
            left_id = left[row]
            tokens[j] = left_id  # the left piece keeps the slot, its origin and its start
            if j < n:
                origin.append(j)
                start.append(lengths[left_id])
            else:
                origin.append(origin[j - n])
                start.append(start[j - n] + lengths[left_id])
            tokens.append(right[row])
            size += 1
        splits = size - n
        if not splits:
            return tokens, attempts, 0
        keys = np.empty(size, dtype=np.int64)
        keys[:n] = np.arange(n, dtype=np.int64) * self.key_base
        keys[n:] = np.asarray(origin, dtype=np.int64) * self.key_base + np.asarray(start, dtype=np.int64)
        order = np.argsort(keys, kind="stable")
        return np.asarray(tokens, dtype=np.int64)[order].tolist(), attempts, splits


class VanillaProcessor:
    mode = "vanilla"

    def __init__(self, adapter: TokenizerAdapter, params: dict):
        self.adapter, self.params = adapter, params

    def __call__(self, ids: list[int], rng: np.random.Generator) -> tuple[list[int], dict]:
        out = list(ids)
        return out, _counters(len(ids), len(out))


class StochasTokProcessor:
    mode = "stochastok"

    def __init__(self, adapter: TokenizerAdapter, params: dict, table: SplitTable):
        self.adapter, self.params, self.table = adapter, params, table
        self.expand = _Expander(adapter, table)

    def __call__(self, ids: list[int], rng: np.random.Generator) -> tuple[list[int], dict]:
        out, attempts, splits = self.expand(ids, self.params["expand_prop"], rng)
        return out, _counters(len(ids), len(out), attempts=attempts, splits=splits)


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
        self.expand = _Expander(adapter, table, forbidden=self.affix_ids)
        self.length_list = [len(b) for b in adapter.token_bytes]
        self.special_flags = [int(k == SPECIAL) for k in adapter.kinds]
        self.special_set = frozenset(i for i, flag in enumerate(self.special_flags) if flag)
        self.affix_flags = [int(i in self.affix_ids) for i in range(adapter.vocab_size)]
        self._piece_cache: dict[bytes, list[int]] = {}
        # (region bytes, cut offsets in it) -> new ids: a pure function of its key
        self._region_cache: dict[tuple[bytes, tuple[int, ...]], list[int]] = {}

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
        key = (region, cuts)
        new = self._region_cache.get(key)
        if new is None:
            bounds = [0, *cuts, len(region)]
            new = [i for a, b in zip(bounds, bounds[1:]) for i in self._encode_piece(region[a:b])]
            if self.adapter.decode_bytes(new) != region:
                raise MorphcptError(f"{self.adapter.source}: re-encoding {region!r} changed its bytes (tokenizer normalizes text?)")
            if len(self._region_cache) > _PIECE_CACHE_LIMIT:
                self._region_cache.clear()
            self._region_cache[key] = new
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
    def _word_cuts_in(self, doc: bytes) -> tuple[list[tuple[int, int, tuple[int, ...]]], bool]:
        """(byte start, byte end, cut byte offsets inside the word) of each word the cutter segments,
        and whether doc is ASCII."""
        text = doc.decode("utf-8", errors="surrogateescape")  # one char per undecodable byte
        ascii_only = len(text) == len(doc)
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
            if ascii_only:
                found.append((start, match.end(), cuts))
                continue
            byte_pos += len(text[char_pos:start].encode("utf-8", errors="surrogateescape"))
            char_pos = start
            prefix_bytes = [0]
            for ch in word:
                prefix_bytes.append(prefix_bytes[-1] + len(ch.encode("utf-8", errors="surrogateescape")))
            found.append((byte_pos, byte_pos + prefix_bytes[-1], tuple(prefix_bytes[c] for c in cuts)))
        return found, ascii_only

    def __call__(self, ids: list[int], rng: np.random.Generator) -> tuple[list[int], dict]:
        cut_prop, expand = self.params["cut_prop"], self.params["expand_prop"]
        n = len(ids)
        extra = {"words_segmentable": 0, "words_cut": 0}
        if n == 0:
            return [], _counters(0, 0, **extra)
        doc = self.adapter.decode_bytes(ids)
        words, ascii_only = self._word_cuts_in(doc)
        chosen = (rng.random(len(words)) < cut_prop).tolist() if words else []
        # Per-document arrays as Python lists: documents are short, and numpy's per-call overhead on
        # ~150-token documents costs more than the work.
        byte_starts = [0, *accumulate(map(self.length_list.__getitem__, ids))]
        special_cum = [0, *accumulate(map(self.special_flags.__getitem__, ids))] if not self.special_set.isdisjoint(ids) else None
        out: list[int] = []
        done = 0  # tokens before this index are in out
        morph_cuts = words_cut = 0
        for (w0, w1, cuts), take in zip(words, chosen):
            if not take:
                continue
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
            new = self._resegment_region(region, tuple(w0 - b0 + c for c in cuts))
            out.extend(ids[done:s])
            out.extend(new)
            done = e
            words_cut += 1
            morph_cuts += len(cuts)
        out.extend(ids[done:])
        expanded, attempts, splits = self.expand(out, expand, rng)
        extra.update(words_segmentable=len(words), words_cut=words_cut)
        preserved = sum(map(self.affix_flags.__getitem__, expanded))
        return expanded, _counters(n, len(expanded), attempts=attempts, splits=splits,
                                   affix_splits=morph_cuts, affix_preserved=preserved, **extra)


def default_cache_dir() -> Path:
    from morphcpt.assets import cache_dir

    return cache_dir() / "split_tables"


def make_processor(adapter: TokenizerAdapter, mode: str, params: dict | None = None, cache_dir: Path | None = None):
    """A callable `proc(ids, rng) -> (ids, counters)` for a mode; params default to DESIGN §1's.

    The split table is cached under cache_dir (default: assets.cache_dir()/split_tables)."""
    resolved = resolve_params(mode, params)
    if mode == "vanilla":
        return VanillaProcessor(adapter, resolved)
    table = split_table_for(adapter, Path(cache_dir) if cache_dir is not None else default_cache_dir())
    if mode == "stochastok":
        return StochasTokProcessor(adapter, resolved, table)
    return PatokProcessor(adapter, resolved, table)
