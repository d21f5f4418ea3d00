"""StochasTok (docs/design.md §4): floor(p·n) attempts, each at a uniform position of the current, growing
sequence; a token with splits is replaced by one of them, chosen uniformly; pieces may split again.
Because the position is uniform over the current tokens, the order in which they are kept does not
matter while sampling: the current tokens live in an unordered list (a split overwrites the left
piece in place and appends the right one, O(1)), each remembering its original position and its
byte offset inside that original token; one sort at the end restores document order. No list is
rebuilt per attempt.

Used by StochasTok and by Patok (which expands its non-affix tokens the same way).
"""

from __future__ import annotations

import math

import numpy as np

from morphcpt.tokenization.adapter import TokenizerAdapter
from morphcpt.tokenization.params import counters
from morphcpt.tokenization.split_table import SplitTable


class Expander:
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
        # Document order: each original slot (its left-most piece, offset 0), then the pieces appended
        # for it by byte offset. (origin, offset) pairs are distinct (each split makes a new boundary
        # inside its original token), so sorting them is the one order. A few pieces per document:
        # sorting them in Python costs less than numpy's per-call overhead.
        out: list[int] = []
        done = 0  # slots before this one are in out
        for slot, _, piece in sorted(zip(origin, start, tokens[n:])):
            if slot >= done:
                out += tokens[done:slot + 1]
                done = slot + 1
            out.append(piece)
        out += tokens[done:n]
        return out, attempts, splits


class StochasTokProcessor:
    mode = "stochastok"

    def __init__(self, adapter: TokenizerAdapter, params: dict, table: SplitTable):
        self.adapter, self.params, self.table = adapter, params, table
        self.expand = Expander(adapter, table)

    def __call__(self, ids: list[int], rng: np.random.Generator) -> tuple[list[int], dict]:
        out, attempts, splits = self.expand(ids, self.params["expand_prop"], rng)
        return out, counters(len(ids), len(out), attempts=attempts, splits=splits)
