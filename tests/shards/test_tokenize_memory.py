"""The tokenize job's memory bound: a chunk whose longest texts need more than the declared mem_mb
stops before any work, naming the document's line and the memory it needs. Whether a real job's
peak stays under the bound is measured by benchmarks/tokenize_memory.py (peak RSS is machine noise,
not a unit test)."""

from __future__ import annotations

import pytest

from morphcpt.errors import MorphcptError
from morphcpt.shards import tokenize_chunk
from morphcpt.shards.memory import BASE_MB, check_tokenize_memory, scan_chunk

from shard_testlib import SENTENCES, small_corpus, write_jsonl


def _long_text(megabytes: float) -> str:
    words = " ".join(SENTENCES)
    return " ".join([words] * int(megabytes * 1e6 / (len(words) + 1) + 1))


def test_the_longest_document_is_named_with_the_memory_it_needs(tmp_path):
    texts = small_corpus(600)
    texts[400] = _long_text(5)
    chunk = write_jsonl(tmp_path / "chunk_000.jsonl", texts)
    memory = scan_chunk(chunk, batch_size=256)
    assert memory.batches[0].longest_line == 401
    need = check_tokenize_memory(chunk, None, 1, 256)
    assert BASE_MB + 1000 < need < BASE_MB + 1100  # + 200 bytes per byte of the ~5.1 MB batch
    assert check_tokenize_memory(chunk, None, 2, 256) > need  # two workers: the two largest batches
    with pytest.raises(MorphcptError) as info:
        tokenize_chunk(chunk, tmp_path / "no-tokenizer-needed", tmp_path / "out" / "chunk_000", "vanilla",
                       {"vanilla": {}}, 0, "000", mem_mb=1000)
    message = str(info.value)
    assert message.startswith(f"{chunk}:401: a document of 5.0 MB; tokenizing this chunk with 1 thread(s) needs "
                              f"about {need} MB, more than this job's mem_mb (1000)")
    assert f"resources.tokenize.mem_mb to at least {need}" in message
    assert not (tmp_path / "out").exists()


def test_small_chunks_need_little(tmp_path):
    chunk = write_jsonl(tmp_path / "chunk_000.jsonl", small_corpus(600))
    assert BASE_MB < check_tokenize_memory(chunk, 2000, 1, 256) < BASE_MB + 50
