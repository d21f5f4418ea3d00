"""Shards of the project's Tagalog corpus with the real tokenization core, for both tokenizer
styles (Llama-3 byte-level BPE; Gemma-style SentencePiece with byte fallback): every mode,
verify-shards passes, expanded shards really carry the expansion, and the checks catch the
earlier pipeline's bugs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from morphcpt.corpus import download_corpus, split_chunks
from morphcpt.errors import MorphcptError
from morphcpt.shards import tokenize_chunk, verify_shard

MODES = {"vanilla": {}, "stochastok": {"expand_prop": 0.1},
         "patok": {"cut_prop": 0.8, "expand_prop": 0.1}}
SEED = 7


@pytest.fixture(scope="module")
def demo_chunks(tmp_path_factory, repo_root) -> list[Path]:
    """data/tagalog_corpus.jsonl split into the demo's 2 chunks by the real split stage."""
    work = tmp_path_factory.mktemp("corpus")
    corpus = {"source": "local", "local_path": str(repo_root / "data" / "tagalog_corpus.jsonl")}
    download_corpus(corpus, work / "raw" / "manifest.json", log=lambda m: None)
    chunks = [work / "chunks" / f"chunk_{i:03d}.jsonl" for i in range(2)]
    split_chunks(work / "raw" / "manifest.json", chunks, work / "chunks" / "manifest.json", log=lambda m: None)
    return chunks


@pytest.fixture(scope="module", params=["llama3", "sentencepiece"])
def tokenizer_dir(request, tmp_path_factory) -> Path:
    if request.param == "llama3":
        return request.getfixturevalue("llama3_tokenizer_dir")
    from morphcpt.testing import sentencepiece_tokenizer_dir

    return sentencepiece_tokenizer_dir(tmp_path_factory.mktemp("sp") / "tokenizer")


@pytest.fixture(scope="module")
def shards(tokenizer_dir, demo_chunks, tmp_path_factory) -> dict[tuple[str, str], Path]:
    """Every (mode, chunk) shard, as the tokenize rule lays them out."""
    root = tmp_path_factory.mktemp("shards")
    out = {}
    for mode in MODES:
        for chunk in demo_chunks:
            cid = chunk.stem.split("_")[1]
            prefix = root / "tok" / mode / f"chunk_{cid}"
            tokenize_chunk(chunk, tokenizer_dir, prefix, mode, MODES, SEED, cid, progress=False)
            out[(mode, cid)] = prefix
    return out


def _sidecar(prefix: Path) -> dict:
    return json.loads(Path(str(prefix) + ".json").read_text())


def _documents(prefix: Path) -> list[list[int]]:
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    return [doc.tolist() for doc in IndexedDataset(str(prefix))]


def test_every_shard_verifies(shards, tokenizer_dir):
    for (mode, _), prefix in shards.items():
        summary = verify_shard(prefix, tokenizer_dir=tokenizer_dir)
        if mode != "vanilla":
            assert summary["checked_against_vanilla"] == summary["documents"]  # small corpus: every document


def test_vanilla_shard_is_the_canonical_encoding_wrapped_in_bos_eos(shards, demo_chunks, tokenizer_dir):
    from megatron.core.datasets.indexed_dataset import DType

    from morphcpt.tokenization import TokenizerAdapter

    adapter = TokenizerAdapter.from_dir(tokenizer_dir)
    texts = [json.loads(line)["text"] for line in demo_chunks[0].read_text(encoding="utf-8").splitlines()]
    docs = _documents(shards[("vanilla", "000")])
    assert docs == [[adapter.bos_id] + adapter.encode(t) + [adapter.eos_id] for t in texts]
    sidecar = _sidecar(shards[("vanilla", "000")])
    assert sidecar["dtype"] == np.dtype(DType.optimal_dtype(adapter.vocab_size)).name
    assert sidecar["vocab_size"] == adapter.vocab_size and sidecar["tokenizer_fingerprint"] == adapter.fingerprint
    if adapter.vocab_size >= 65_500:
        assert sidecar["dtype"] == "int32"


def test_expanded_shards_carry_the_expansion(shards, tokenizer_dir):
    from morphcpt.tokenization import TokenizerAdapter

    adapter = TokenizerAdapter.from_dir(tokenizer_dir)
    for mode in ("stochastok", "patok"):
        for cid in ("000", "001"):
            docs, vdocs = _documents(shards[(mode, cid)]), _documents(shards[("vanilla", cid)])
            assert docs != vdocs, f"{mode} shard equals vanilla: the expansion did not reach the shard"
            for doc, vdoc in zip(docs, vdocs):
                assert adapter.decode_bytes(doc[1:-1]) == adapter.decode_bytes(vdoc[1:-1])
            sidecar = _sidecar(shards[(mode, cid)])
            assert sidecar["tokens_in"] == _sidecar(shards[("vanilla", cid)])["tokens_out"]
            assert sidecar["counters"]["attempts"] > 0


def test_stochastok_ratio_on_the_demo_corpus(shards, tokenizer_dir):
    """docs/design.md §4: StochasTok at expand_prop 0.1 gives about 1.09 tokens per canonical token."""
    out = sum(_sidecar(shards[("stochastok", c)])["tokens_out"] for c in ("000", "001"))
    base = sum(_sidecar(shards[("vanilla", c)])["tokens_out"] for c in ("000", "001"))
    ratio = out / base
    print(f"stochastok/vanilla token ratio on the demo corpus ({Path(tokenizer_dir).name}): {ratio:.4f}")
    assert 1.07 <= ratio <= 1.11


def test_verify_catches_a_shard_that_is_really_vanilla(shards, tokenizer_dir, tmp_path):
    """The earlier pipeline's bug: the expanded corpus came out identical to vanilla."""
    src = shards[("stochastok", "000")]
    fake = tmp_path / "tok" / "stochastok" / "chunk_000"
    fake.parent.mkdir(parents=True)
    shutil.copytree(src.parent.parent / "vanilla", tmp_path / "tok" / "vanilla")
    for suffix in (".bin", ".idx"):
        shutil.copy(str(shards[("vanilla", "000")]) + suffix, str(fake) + suffix)
    sidecar = _sidecar(shards[("vanilla", "000")])
    sidecar.update(mode="stochastok", params={"expand_prop": 0.1})
    Path(str(fake) + ".json").write_text(json.dumps(sidecar))
    with pytest.raises(MorphcptError, match="identical to the vanilla shard"):
        verify_shard(fake, tokenizer_dir=tokenizer_dir)


def test_verify_catches_changed_text_and_a_wrong_ratio(shards, tokenizer_dir, tmp_path):
    src = shards[("patok", "001")]
    for mode in ("vanilla", "patok"):
        shutil.copytree(src.parent.parent / mode, tmp_path / "tok" / mode)
    prefix = tmp_path / "tok" / "patok" / "chunk_001"
    sidecar = _sidecar(prefix)
    tokens = np.memmap(str(prefix) + ".bin", dtype=sidecar["dtype"], mode="r+")
    tokens[3] = tokens[4] if tokens[3] != tokens[4] else tokens[5]  # one id inside document 0 replaced
    tokens.flush()
    del tokens
    with pytest.raises(MorphcptError, match="document 0 decodes to different bytes"):
        verify_shard(prefix, tokenizer_dir=tokenizer_dir)
    shutil.copy(str(src) + ".bin", str(prefix) + ".bin")
    Path(str(prefix) + ".json").write_text(json.dumps({**sidecar, "tokens_in": sidecar["tokens_in"] + 1,
                                                       "ratio": sidecar["tokens_out"] / (sidecar["tokens_in"] + 1)}))
    with pytest.raises(MorphcptError, match="tokens_in .* differs from the vanilla shard"):
        verify_shard(prefix, tokenizer_dir=tokenizer_dir)


@pytest.mark.slow
def test_two_workers_write_the_same_bytes_as_one(tokenizer_dir, demo_chunks, tmp_path, monkeypatch):
    monkeypatch.setattr("morphcpt.shards.build._BATCH", 3)  # many batches in flight, finishing in any order
    for threads in (1, 2):
        tokenize_chunk(demo_chunks[1], tokenizer_dir, tmp_path / f"t{threads}" / "chunk_001", "patok", MODES, SEED,
                       "001", threads=threads, progress=False)
    for suffix in (".bin", ".idx"):
        assert Path(str(tmp_path / "t1" / "chunk_001") + suffix).read_bytes() == \
            Path(str(tmp_path / "t2" / "chunk_001") + suffix).read_bytes()


def test_verify_shards_cli(shards, tokenizer_dir, tmp_path, capsys):
    from morphcpt.cli import main

    prefixes = [str(shards[(m, "000")]) for m in MODES]
    assert main(["verify-shards", *prefixes, "--tokenizer-dir", str(tokenizer_dir)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in out] == [f"ok {p}" for p in prefixes]
    assert main(["verify-shards", str(tmp_path / "missing" / "chunk_000")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("morphcpt verify-shards: error:") and "shard file not found" in err and "\n" not in err
