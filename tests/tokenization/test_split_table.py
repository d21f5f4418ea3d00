"""The split table: correct, complete, integer-keyed through the disk cache."""

from __future__ import annotations

import numpy as np
import pytest

from morphcpt.errors import MorphcptError
from morphcpt.tokenization import NORMAL, build_split_table, make_processor, split_table_for
from morphcpt.tokenization.split_table import _cache_path


def _pieces(adapter, table, token_id):
    return sorted((adapter.token_bytes[a], adapter.token_bytes[b]) for a, b in table.splits(token_id))


def test_known_llama3_entries(llama3_adapter, split_cache):
    a = llama3_adapter
    table = split_table_for(a, split_cache)
    assert table.vocab_size == 128_256
    by_bytes = {a.token_bytes[i]: i for i in range(128_000)}
    assert _pieces(a, table, by_bytes[b" nag"]) == [(b" n", b"ag"), (b" na", b"g")]
    assert _pieces(a, table, by_bytes[b"ain"]) == [(b"a", b"in"), (b"ai", b"n")]
    assert _pieces(a, table, by_bytes[b" the"]) == [(b" ", b"the"), (b" t", b"he"), (b" th", b"e")]
    assert table.splits(by_bytes[b"a"]) == []  # single bytes cannot split
    assert all(table.splits(i) == [] for i in range(128_000, 128_256))  # specials never split
    # a multi-byte character token splits into partial UTF-8 byte tokens (byte-level BPE allows it)
    assert (b"\xc3", b"\xb1") in _pieces(a, table, by_bytes["ñ".encode()])


def test_every_entry_concatenates_to_its_token(adapter, split_cache):
    table = split_table_for(adapter, split_cache)
    tb, kinds = adapter.token_bytes, adapter.kinds
    owners = np.repeat(np.arange(table.vocab_size), table.counts)
    assert len(owners) == len(table.pairs) > 0
    for owner, (left, right) in zip(owners.tolist(), table.pairs.tolist()):
        assert tb[left] + tb[right] == tb[owner]
        assert kinds[owner] == kinds[left] == kinds[right] == NORMAL


def test_sentencepiece_table_is_complete(sp_adapter):
    """Brute force over all pairs of normal tokens (fine for 800 ids) finds exactly the table."""
    a = sp_adapter
    table = build_split_table(a)
    normal = [i for i, k in enumerate(a.kinds) if k == NORMAL]
    by_bytes = {a.token_bytes[i]: i for i in normal}
    expected = {}
    for left in normal:
        for right in normal:
            whole = by_bytes.get(a.token_bytes[left] + a.token_bytes[right])
            if whole is not None:
                expected.setdefault(whole, set()).add((left, right))
    got = {i: set(table.splits(i)) for i in range(a.vocab_size) if table.splits(i)}
    assert got == expected
    assert not any(table.splits(i) for i, k in enumerate(a.kinds) if k != NORMAL)  # <0xNN> and specials


def test_cache_round_trip_keeps_integer_keys(tmp_path, sp_adapter):
    built = split_table_for(sp_adapter, tmp_path)
    path = _cache_path(tmp_path, sp_adapter.fingerprint)
    assert path.is_file()
    loaded = split_table_for(sp_adapter, tmp_path)
    assert np.issubdtype(loaded.offsets.dtype, np.integer) and np.issubdtype(loaded.pairs.dtype, np.integer)
    assert np.array_equal(built.offsets, loaded.offsets) and np.array_equal(built.pairs, loaded.pairs)
    # the trap: a cache that loads but expands nothing. Two runs from the cache must both split.
    for _ in range(2):
        proc = make_processor(sp_adapter, "stochastok", {"expand_prop": 0.5}, cache_dir=tmp_path)
        ids = sp_adapter.encode("Naglalaro ang mga bata sa plaza tuwing hapon. " * 10)
        _, counters = proc(ids, np.random.default_rng(0))
        assert counters["splits"] > 0


def test_damaged_or_foreign_cache_is_refused(tmp_path, sp_adapter, llama3_adapter):
    path = _cache_path(tmp_path, sp_adapter.fingerprint)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"not an npz")
    with pytest.raises(MorphcptError, match="unreadable split-table cache"):
        split_table_for(sp_adapter, tmp_path)
    # a table of another vocabulary stored under this fingerprint's name
    other = build_split_table(llama3_adapter)
    np.savez(path, offsets=other.offsets, pairs=other.pairs, fingerprint=np.array(other.fingerprint))
    with pytest.raises(MorphcptError, match="does not match"):
        split_table_for(sp_adapter, tmp_path)
