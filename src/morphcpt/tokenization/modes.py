"""The three tokenization modes as processors: canonical ids + a seeded Generator -> ids + counters.

StochasTok (DESIGN §4): floor(p·n) attempts, each at a uniform position of the current, growing
sequence; a token with splits is replaced by one of them, chosen uniformly; pieces may split again.
Because the position is uniform over the current tokens, the order in which they are kept does not
matter while sampling: the current tokens live in an unordered list (a split overwrites the left
piece in place and appends the right one, O(1)), each remembering its original position and its
byte offset inside that original token; one sort at the end restores document order. No list is
rebuilt per attempt.

Patok (DESIGN §4): floor(c·n) windows of k ∈ {2,3,4} adjacent canonical tokens (weights
.35/.35/.30), each at a uniform start. A window is used only if it fits, holds no special token,
starts and ends on character boundaries and does not overlap an earlier window (one draw per
attempt, no retries: every attempt is counted, so the loop is bounded by floor(c·n)). A window that
holds an affix token is left alone with probability a (affix tokens preserved); otherwise its text
is, with probability a, cut at affix boundaries (affixes.text_cuts), and each piece is re-encoded
with the base tokenizer (pieces are the window's own bytes, never decoded ids of a changed
sequence). Then StochasTok with expand_prop e over the result, never splitting affix tokens.
"""

from __future__ import annotations

import math
from itertools import accumulate
from pathlib import Path

import numpy as np

from morphcpt.errors import MorphcptError
from morphcpt.tokenization.adapter import SPECIAL, TokenizerAdapter
from morphcpt.tokenization.affixes import WORD_RE, AffixInventory, affix_token_ids, default_inventory, text_cuts
from morphcpt.tokenization.split_table import SplitTable, split_table_for

MODES = ("vanilla", "stochastok", "patok")
DEFAULT_PARAMS: dict[str, dict[str, float]] = {
    "vanilla": {},
    "stochastok": {"expand_prop": 0.1},
    "patok": {"contract_prop": 0.3, "expand_prop": 0.3, "affix_awareness": 0.95},
}
WINDOW_SIZES = np.array([2, 3, 4])
WINDOW_WEIGHTS = np.array([0.35, 0.35, 0.30])
WINDOW_CUMULATIVE = np.cumsum(WINDOW_WEIGHTS)[:-1]  # size index = number of these below a uniform draw
_ONES = b"\x01" * int(WINDOW_SIZES.max())
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


def _letter_before(doc: bytes, pos: int) -> bool:
    """Whether the character ending at byte pos of doc is a letter (a word goes on to the left)."""
    if pos == 0:
        return False
    byte = doc[pos - 1]
    if byte < 0x80:
        return chr(byte).isalpha()
    ch = doc[max(0, pos - 4):pos].decode("utf-8", errors="ignore")[-1:]
    return bool(ch) and WORD_RE.match(ch) is not None


def _letter_after(doc: bytes, pos: int) -> bool:
    """Whether the character starting at byte pos of doc is a letter (a word goes on to the right)."""
    if pos >= len(doc):
        return False
    byte = doc[pos]
    if byte < 0x80:
        return chr(byte).isalpha()
    ch = doc[pos:pos + 4].decode("utf-8", errors="ignore")[:1]
    return bool(ch) and WORD_RE.match(ch) is not None


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
    mode = "patok"

    def __init__(self, adapter: TokenizerAdapter, params: dict, table: SplitTable, inventory: AffixInventory | None = None):
        self.adapter, self.params, self.table = adapter, params, table
        self.inventory = inventory or default_inventory()
        self.affix_ids = affix_token_ids(adapter.token_bytes, adapter.kinds, self.inventory)
        self.expand = _Expander(adapter, table, forbidden=self.affix_ids)
        self.length_list = [len(b) for b in adapter.token_bytes]
        self.special_flags = [int(k == SPECIAL) for k in adapter.kinds]
        self.special_set = frozenset(i for i, flag in enumerate(self.special_flags) if flag)
        self.affix_flags = [int(i in self.affix_ids) for i in range(adapter.vocab_size)]
        self._piece_cache: dict[str, list[int]] = {}
        # window text (+ whether letters touch it) -> (ids, cuts): pure functions of their keys
        self._window_cache: dict[tuple, tuple[list[int], int]] = {}

    # -- pieces -----------------------------------------------------------------------------------
    def _encode_pieces(self, pieces: list[str]) -> list[list[int]]:
        cache = self._piece_cache
        missing = list(dict.fromkeys(p for p in pieces if p not in cache))
        if missing:
            if len(cache) + len(missing) > _PIECE_CACHE_LIMIT:
                cache.clear()
            encode = self.adapter.encode  # one call per piece: cheaper than a thread-pool batch for few short pieces
            for piece in missing:
                cache[piece] = encode(piece)
        return [cache[p] for p in pieces]

    def cut_text(self, text: str, before: str = "", after: str = "") -> list[str]:
        """The window text cut at affix boundaries (what happens with probability affix_awareness)."""
        cuts = text_cuts(text, self.inventory, before, after)
        if not cuts:
            return [text]
        bounds = [0, *cuts, len(text)]
        return [text[a:b] for a, b in zip(bounds, bounds[1:]) if b > a]

    def _resegment_window(self, text: str, letter_before: bool | None, letter_after: bool | None) -> tuple[list[int], int]:
        """(new ids, affix cuts made) for a window; letter_before None means: no affix cuts."""
        if letter_before is None:
            pieces = [text]
        else:
            pieces = self.cut_text(text, "a" if letter_before else "", "a" if letter_after else "")
        new = [i for piece_ids in self._encode_pieces(pieces) for i in piece_ids]
        if self.adapter.decode_bytes(new) != text.encode("utf-8"):
            raise MorphcptError(f"{self.adapter.source}: re-encoding {text!r} changed its bytes (tokenizer normalizes text?)")
        return new, len(pieces) - 1

    def resegment(self, text: str, before: str = "", after: str = "") -> list[int]:
        """Ids of text cut at affix boundaries, each piece encoded by the base tokenizer."""
        return [i for piece_ids in self._encode_pieces(self.cut_text(text, before, after)) for i in piece_ids]

    # -- the mode ---------------------------------------------------------------------------------
    def __call__(self, ids: list[int], rng: np.random.Generator) -> tuple[list[int], dict]:
        contract, expand, awareness = (self.params[k] for k in ("contract_prop", "expand_prop", "affix_awareness"))
        n = len(ids)
        windows = math.floor(contract * n)
        extra = {"windows": windows, "windows_used": 0, "windows_changed": 0}
        if n == 0:
            return [], _counters(0, 0, **extra)
        # Per-document arrays as Python lists: documents are short, and numpy's per-call overhead on
        # ~150-token documents costs more than the work.
        byte_starts = [0, *accumulate(map(self.length_list.__getitem__, ids))]
        doc = self.adapter.decode_bytes(ids)
        doc_len = len(doc)
        affix_cum = [0, *accumulate(map(self.affix_flags.__getitem__, ids))]
        special_cum = [0, *accumulate(map(self.special_flags.__getitem__, ids))] if not self.special_set.isdisjoint(ids) else None

        window_starts = rng.integers(0, n, size=windows).tolist()
        window_sizes = WINDOW_SIZES[np.searchsorted(WINDOW_CUMULATIVE, rng.random(windows), side="right")].tolist()
        keep_affixes = (rng.random(windows) < awareness).tolist()
        cut_affix_draws = (rng.random(windows) < awareness).tolist()

        covered = bytearray(n)
        preserved = affix_splits = used = 0
        replacements: list[tuple[int, int, list[int]]] = []  # (start, end, new ids)
        window_cache = self._window_cache
        if len(window_cache) > _PIECE_CACHE_LIMIT:
            window_cache.clear()
        for s, size, keep, cut_affixes in zip(window_starts, window_sizes, keep_affixes, cut_affix_draws):
            e = s + size
            if e > n or covered.find(1, s, e) != -1:
                continue
            b0, b1 = byte_starts[s], byte_starts[e]
            # both ends on character boundaries: no UTF-8 continuation byte right after them
            if (b0 < doc_len and doc[b0] & 0xC0 == 0x80) or (b1 < doc_len and doc[b1] & 0xC0 == 0x80):
                continue
            if special_cum is not None and special_cum[e] != special_cum[s]:
                continue
            try:
                # ids that are not one UTF-8 text (a special token inserted inside a character)
                # pass the boundary test above but fail here: the window is skipped
                text = doc[b0:b1].decode("utf-8")
            except UnicodeDecodeError:
                continue
            covered[s:e] = _ONES[:size]
            used += 1
            affixes_inside = affix_cum[e] - affix_cum[s]
            if affixes_inside and keep:
                preserved += affixes_inside
                continue
            if cut_affixes:
                key = (text, _letter_before(doc, b0), _letter_after(doc, b1))
            else:
                key = (text, None, None)  # no affix cuts: the window text is re-encoded whole
            cached = window_cache.get(key)
            if cached is None:
                cached = window_cache[key] = self._resegment_window(*key)
            new, cuts = cached
            affix_splits += cuts
            replacements.append((s, e, new))

        out: list[int] = []
        prev = changed = 0
        for s, e, new in sorted(replacements, key=lambda r: r[0]):
            out.extend(ids[prev:s])
            if new != ids[s:e]:
                changed += 1
            out.extend(new)
            prev = e
        out.extend(ids[prev:])

        expanded, attempts, splits = self.expand(out, expand, rng)
        extra.update(windows_used=used, windows_changed=changed)
        return expanded, _counters(n, len(expanded), attempts=attempts, splits=splits,
                                   affix_splits=affix_splits, affix_preserved=preserved, **extra)


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
