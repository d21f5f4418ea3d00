"""The StochasTok split table: every cut of a normal token's bytes into two normal tokens.

Built in O(V·L) with one hash lookup per cut (L = token length in bytes), stored as CSR integer
arrays (`offsets`, `pairs`) and cached on disk as .npz under the vocabulary fingerprint. Keys are
token ids in arrays, so nothing is converted to strings on the way through the cache.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from morphcpt.errors import MorphcptError
from morphcpt.tokenization.adapter import NORMAL, TokenizerAdapter

FORMAT_VERSION = 1


class SplitTable:
    """splits of token t: pairs[offsets[t]:offsets[t+1]] (each row: left id, right id), left to right."""

    def __init__(self, offsets: np.ndarray, pairs: np.ndarray, fingerprint: str):
        self.offsets = offsets
        self.pairs = pairs
        self.fingerprint = fingerprint
        self.counts = np.diff(offsets)

    @property
    def vocab_size(self) -> int:
        return len(self.offsets) - 1

    def splits(self, token_id: int) -> list[tuple[int, int]]:
        lo, hi = self.offsets[token_id], self.offsets[token_id + 1]
        return [(int(a), int(b)) for a, b in self.pairs[lo:hi]]

    def __len__(self) -> int:
        return len(self.pairs)


def build_split_table(adapter: TokenizerAdapter) -> SplitTable:
    token_bytes, kinds = adapter.token_bytes, adapter.kinds
    by_bytes: dict[bytes, int] = {}
    for idx, (raw, kind) in enumerate(zip(token_bytes, kinds)):
        if kind == NORMAL and raw not in by_bytes:
            by_bytes[raw] = idx  # the lowest id wins if two tokens share bytes
    lookup = by_bytes.get
    counts = [0] * adapter.vocab_size
    lefts: list[int] = []
    rights: list[int] = []
    for idx, (raw, kind) in enumerate(zip(token_bytes, kinds)):
        if kind != NORMAL or len(raw) < 2:
            continue
        found = 0
        for cut in range(1, len(raw)):
            left = lookup(raw[:cut])
            if left is None:
                continue
            right = lookup(raw[cut:])
            if right is None:
                continue
            lefts.append(left)
            rights.append(right)
            found += 1
        counts[idx] = found
    offsets = np.zeros(adapter.vocab_size + 1, dtype=np.int64)
    np.cumsum(np.asarray(counts, dtype=np.int64), out=offsets[1:])
    pairs = np.empty((len(lefts), 2), dtype=np.int32)
    pairs[:, 0] = lefts
    pairs[:, 1] = rights
    return SplitTable(offsets, pairs, adapter.fingerprint)


def _cache_path(cache_dir: Path, fingerprint: str) -> Path:
    return Path(cache_dir) / f"split_table-v{FORMAT_VERSION}-{fingerprint}.npz"


def load_split_table(path: Path, adapter: TokenizerAdapter) -> SplitTable:
    try:
        with np.load(path, allow_pickle=False) as data:
            offsets, pairs = data["offsets"], data["pairs"]
            fingerprint = str(data["fingerprint"])
    except Exception as exc:  # noqa: BLE001 - a damaged cache file names itself
        raise MorphcptError(f"{path}: unreadable split-table cache ({exc}); delete it to rebuild") from exc
    if fingerprint != adapter.fingerprint or len(offsets) != adapter.vocab_size + 1 or offsets[-1] != len(pairs):
        raise MorphcptError(f"{path}: split-table cache does not match tokenizer {adapter.source}; delete it to rebuild")
    if not (np.issubdtype(offsets.dtype, np.integer) and np.issubdtype(pairs.dtype, np.integer)):
        raise MorphcptError(f"{path}: split-table cache has non-integer arrays; delete it to rebuild")
    return SplitTable(offsets, pairs, fingerprint)


def split_table_for(adapter: TokenizerAdapter, cache_dir: Path | None) -> SplitTable:
    """The adapter's split table, from cache_dir when present, else built and cached (atomically)."""
    if cache_dir is None:
        return build_split_table(adapter)
    path = _cache_path(Path(cache_dir), adapter.fingerprint)
    if path.is_file():
        return load_split_table(path, adapter)
    table = build_split_table(adapter)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".split_table-", suffix=".npz", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, offsets=table.offsets, pairs=table.pairs, fingerprint=np.array(table.fingerprint))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return table
