"""The shard writer's mechanics with a stand-in byte tokenizer and processor: Megatron format,
bos/eos, sidecar, byte-identical output for any worker count, no partial outputs, bad lines."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from shard_testlib import BAD_FIXTURES, ByteAdapter, byte_rng, duplicating_processor, small_corpus, write_jsonl

from morphcpt.corpus import BAD_LINE_KINDS
from morphcpt.errors import MorphcptError
from morphcpt.shards import SIDECAR_KEYS, ShardSpec, build_shard, code_version, verify_shard


def _identity(ids, rng):
    return list(ids), {}


def _build(chunk, prefix, processor=duplicating_processor, mode="stochastok", threads=1, on_bad_line="error",
           seed=3, chunk_id="001"):
    spec = ShardSpec(mode=mode, params={"expand_prop": 0.1} if mode != "vanilla" else {}, seed=seed, chunk=chunk_id)
    return build_shard(chunk, prefix, ByteAdapter(), processor, spec, byte_rng, on_bad_line=on_bad_line,
                       threads=threads, progress=False)


def _shard_files(prefix) -> list[Path]:
    return [Path(str(prefix) + s) for s in (".bin", ".idx", ".json")]


def test_documents_are_wrapped_in_bos_eos_and_read_back_by_megatron(tmp_path):
    from megatron.core.datasets.indexed_dataset import IndexedDataset

    texts = small_corpus(25)
    chunk = write_jsonl(tmp_path / "chunk_001.jsonl", texts)
    sidecar = _build(chunk, tmp_path / "vanilla" / "chunk_001", processor=_identity, mode="vanilla")
    ds = IndexedDataset(str(tmp_path / "vanilla" / "chunk_001"))
    assert len(ds) == len(texts) == sidecar["documents"]
    for text, doc in zip(texts, ds):
        assert doc.dtype == np.uint16  # DType.optimal_dtype(260): the tokenizer's vocabulary decides
        assert doc.tolist() == [256] + list(text.encode()) + [257]
    assert sidecar["tokens_in"] == sidecar["tokens_out"] == sum(len(t.encode()) for t in texts)
    assert sidecar["ratio"] == 1.0 and sidecar["dtype"] == "uint16"


def test_sidecar_has_every_key_the_train_stage_reads(tmp_path):
    chunk = write_jsonl(tmp_path / "chunk_001.jsonl", small_corpus(10))
    sidecar = _build(chunk, tmp_path / "stochastok" / "chunk_001")
    on_disk = json.loads(Path(str(tmp_path / "stochastok" / "chunk_001") + ".json").read_text())
    assert on_disk == sidecar
    assert set(SIDECAR_KEYS) <= set(sidecar)
    assert sidecar["tokens_out"] == sidecar["tokens_in"] + 10  # the stand-in repeats one id per document
    assert sidecar["ratio"] == pytest.approx(sidecar["tokens_out"] / sidecar["tokens_in"])
    assert sidecar["counters"] == {"attempts": 10, "successes": 10}
    assert sidecar["bad_lines"] == {} and sidecar["chunk"] == "001" and sidecar["seed"] == 3
    assert sidecar["code_version"] == code_version(mode="stochastok")
    assert sidecar["tokenizer_fingerprint"] == "byte-adapter-test"


def test_any_worker_count_gives_byte_identical_files(tmp_path):
    chunk = write_jsonl(tmp_path / "chunk_001.jsonl", small_corpus(700, seed=5))  # several batches
    one = _build(chunk, tmp_path / "t1" / "chunk_001", threads=1)
    two = _build(chunk, tmp_path / "t2" / "chunk_001", threads=2)
    for a, b in zip(_shard_files(tmp_path / "t1" / "chunk_001")[:2], _shard_files(tmp_path / "t2" / "chunk_001")[:2]):
        assert a.read_bytes() == b.read_bytes()
    assert one == two


def test_seed_and_chunk_change_the_expansion(tmp_path):
    chunk = write_jsonl(tmp_path / "chunk_001.jsonl", small_corpus(50))
    _build(chunk, tmp_path / "a" / "chunk_001", seed=3)
    _build(chunk, tmp_path / "b" / "chunk_001", seed=4)
    _build(chunk, tmp_path / "c" / "chunk_001", seed=3, chunk_id="002")
    bins = [Path(str(tmp_path / d / "chunk_001") + ".bin").read_bytes() for d in "abc"]
    assert bins[0] != bins[1] and bins[0] != bins[2]


@pytest.mark.parametrize("kind", BAD_LINE_KINDS)
def test_bad_line_error_names_file_and_line_and_leaves_no_shard(tmp_path, kind):
    prefix = tmp_path / "out" / "chunk_000"
    with pytest.raises(MorphcptError, match=rf"{kind}\.jsonl:2: bad input line \({kind.replace('_', ' ')}\)"):
        _build(BAD_FIXTURES[kind], prefix)
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize("kind", BAD_LINE_KINDS)
def test_bad_line_skip_is_counted_in_the_sidecar(tmp_path, kind):
    sidecar = _build(BAD_FIXTURES[kind], tmp_path / "out" / "chunk_000", on_bad_line="skip")
    assert sidecar["bad_lines"] == {kind: 1}
    assert sidecar["documents"] == 3


def test_processor_that_leaves_the_vocabulary_is_caught(tmp_path):
    chunk = write_jsonl(tmp_path / "chunk_000.jsonl", small_corpus(5))

    def appends_new_eod(ids, rng):  # the earlier pipeline's bug: an end-of-document id past the vocabulary
        return list(ids) + [ByteAdapter.vocab_size], {}

    with pytest.raises(MorphcptError, match="outside the vocabulary"):
        _build(chunk, tmp_path / "out" / "chunk_000", processor=appends_new_eod)
    assert list((tmp_path / "out").iterdir()) == []


def test_failure_in_a_worker_leaves_no_shard(tmp_path):
    chunk = write_jsonl(tmp_path / "chunk_000.jsonl", small_corpus(600))

    def explodes(ids, rng):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        _build(chunk, tmp_path / "out" / "chunk_000", processor=explodes, threads=2)
    assert list((tmp_path / "out").iterdir()) == []


def test_missing_chunk_and_unknown_mode_are_one_line(tmp_path):
    from morphcpt.shards import tokenize_chunk

    with pytest.raises(MorphcptError, match="chunk file not found"):
        _build(tmp_path / "nope.jsonl", tmp_path / "out" / "chunk_000")
    with pytest.raises(MorphcptError, match=r"mode 'patok' is not in the config's modes \(vanilla\)") as err:
        tokenize_chunk(tmp_path / "nope.jsonl", tmp_path, tmp_path / "x", "patok", {"vanilla": {}}, 1, "000")
    assert "\n" not in str(err.value)


def test_verify_catches_a_count_mismatch_and_a_wrong_bos(tmp_path):
    chunk = write_jsonl(tmp_path / "chunk_000.jsonl", small_corpus(8))
    prefix = tmp_path / "shards" / "vanilla" / "chunk_000"
    _build(chunk, prefix, processor=_identity, mode="vanilla")
    assert verify_shard(prefix, adapter=ByteAdapter())["documents"] == 8
    sidecar_path = Path(str(prefix) + ".json")
    good = json.loads(sidecar_path.read_text())
    sidecar_path.write_text(json.dumps({**good, "documents": 9}))
    with pytest.raises(MorphcptError, match="8 documents, the sidecar says 9"):
        verify_shard(prefix, adapter=ByteAdapter())
    sidecar_path.write_text(json.dumps({**good, "bos_id": 5}))
    with pytest.raises(MorphcptError, match="does not start with bos 5"):
        verify_shard(prefix, adapter=ByteAdapter())
    sidecar_path.write_text(json.dumps({**good, "tokens_out": good["tokens_out"] + 1}))
    with pytest.raises(MorphcptError, match="tokens on disk"):
        verify_shard(prefix, adapter=ByteAdapter())


def test_eos_inside_a_document_is_caught_when_writing_and_when_verifying(tmp_path):
    chunk = write_jsonl(tmp_path / "chunk_000.jsonl", small_corpus(6))

    def inserts_eos(ids, rng):
        return [ids[0], ByteAdapter.eos_id] + list(ids[1:]), {}

    with pytest.raises(MorphcptError, match="bos/eos id inside a document"):
        _build(chunk, tmp_path / "bad" / "chunk_000", processor=inserts_eos)
    assert list((tmp_path / "bad").iterdir()) == []

    prefix = tmp_path / "shards" / "vanilla" / "chunk_000"
    sidecar = _build(chunk, prefix, processor=_identity, mode="vanilla")
    tokens = np.memmap(str(prefix) + ".bin", dtype=sidecar["dtype"], mode="r+")
    tokens[2] = ByteAdapter.eos_id
    tokens.flush()
    del tokens
    with pytest.raises(MorphcptError, match="bos/eos ids for 6 documents"):
        verify_shard(prefix, adapter=ByteAdapter())


def test_verify_compares_documents_with_their_chunk_text(tmp_path):
    texts = small_corpus(12)
    chunk = write_jsonl(tmp_path / "chunk_000.jsonl", texts)
    prefix = tmp_path / "shards" / "vanilla" / "chunk_000"
    _build(chunk, prefix, processor=_identity, mode="vanilla")
    assert verify_shard(prefix, adapter=ByteAdapter())["checked_against_text"] == 12
    write_jsonl(chunk, texts[:-1] + [texts[-1] + "!"])  # the chunk changed after the shard was built
    with pytest.raises(MorphcptError, match="changed since the shard was built"):
        verify_shard(prefix, adapter=ByteAdapter())
    chunk.unlink()  # shards moved without their chunks: checked, and the summary says the text was not
    assert verify_shard(prefix, adapter=ByteAdapter())["checked_against_text"] == 0


def test_preprocessor_sources_are_what_the_tokenize_rule_tracks(repo_root):
    import sys as _sys

    from morphcpt.shards import preprocessor_sources

    sources = {p.relative_to(repo_root / "src" / "morphcpt").as_posix() for p in preprocessor_sources()}
    assert {"corpus.py", "shards/build.py", "tokenization/modes.py", "tokenization/adapter.py"} <= sources
    assert any(s.endswith(".txt") for s in sources)  # data files (the affix inventory) count too
    # every tokenization module the shard writer imports is tracked
    import morphcpt.tokenization  # noqa: F401

    loaded = {Path(m.__file__).resolve() for name, m in list(_sys.modules.items())
              if name.startswith("morphcpt.tokenization") and getattr(m, "__file__", None)}
    loaded_rel = {p.relative_to(repo_root / "src" / "morphcpt").as_posix() for p in loaded}
    from morphcpt.shards import SOURCE_MODES

    offline = {rel for rel, modes in SOURCE_MODES.items() if not modes}  # cli, tokstats, the lexicon builders
    assert {"tokenization/cli.py", "tokenization/tokstats.py"} <= offline
    assert loaded_rel - offline <= sources


def test_every_tokenization_file_is_assigned_to_its_modes(repo_root):
    """A new file in src/morphcpt/tokenization/ must be listed in shards.SOURCE_MODES (with the modes
    whose shards it shapes, or () if no shard uses it); until then it reruns every mode's shards."""
    from morphcpt.shards import ALL_MODES, SOURCE_MODES, unassigned_sources
    from morphcpt.tokenization import MODES

    assert unassigned_sources() == [], "list these files in morphcpt.shards.SOURCE_MODES"
    package = repo_root / "src" / "morphcpt"
    assert [rel for rel in SOURCE_MODES if not (package / rel).is_file()] == [], "SOURCE_MODES lists missing files"
    assert set(ALL_MODES) == set(MODES)
    assert all(set(modes) <= set(ALL_MODES) for modes in SOURCE_MODES.values())
    # the split of the issue: vanilla's files are in every mode, StochasTok's in Patok's
    from morphcpt.shards import preprocessor_sources

    per_mode = {m: set(preprocessor_sources(mode=m)) for m in ALL_MODES}
    assert per_mode["vanilla"] < per_mode["stochastok"] < per_mode["patok"]
    names = {m: {p.name for p in files} for m, files in per_mode.items()}
    assert {"build.py", "adapter.py", "corpus.py"} <= names["vanilla"]
    assert "split_table.py" in names["stochastok"] - names["vanilla"]
    assert {"affixes.py", "affixes_filipino.txt"} <= names["patok"] - names["stochastok"]
    assert "cli.py" not in names["patok"] and "tokstats.py" not in names["patok"]


def test_an_unlisted_file_counts_for_every_mode_and_code_version_is_per_mode(tmp_path):
    from morphcpt.shards import ALL_MODES, SOURCE_MODES, code_version, preprocessor_sources, unassigned_sources

    package = tmp_path / "morphcpt"
    for rel in SOURCE_MODES:
        (package / rel).parent.mkdir(parents=True, exist_ok=True)
        (package / rel).write_text(f"# {rel}\n")
    before = {m: code_version(package, m) for m in ALL_MODES}
    (package / "tokenization" / "affixes.py").write_text("# edited\n")
    after = {m: code_version(package, m) for m in ALL_MODES}
    assert [m for m in ALL_MODES if before[m] != after[m]] == ["patok"]

    (package / "tokenization" / "new_mode_helper.py").write_text("# not in SOURCE_MODES yet\n")
    assert unassigned_sources(package) == ["tokenization/new_mode_helper.py"]
    for mode in ALL_MODES:
        assert package / "tokenization" / "new_mode_helper.py" in preprocessor_sources(package, mode)


def test_blank_lines_in_a_chunk_are_skipped_as_everywhere_else(tmp_path):
    """A trailing (or inner) blank line is not a document: the shard holds the other lines, each
    seeded by its own line number, and verification against the chunk text agrees."""
    texts = small_corpus(6)
    lines = [json.dumps({"text": t}) for t in texts]
    messy = tmp_path / "messy" / "chunk_001.jsonl"
    messy.parent.mkdir()
    messy.write_text("\n".join(lines[:3]) + "\n\n" + "\n".join(lines[3:]) + "\n\n")
    sidecar = _build(messy, tmp_path / "messy" / "vanilla" / "chunk_001", processor=_identity, mode="vanilla")
    assert sidecar["documents"] == 6 and sidecar["bad_lines"] == {}
    assert verify_shard(tmp_path / "messy" / "vanilla" / "chunk_001", adapter=ByteAdapter())["checked_against_text"] == 6
    # the document after the blank line draws from line 5's stream, as `morphcpt segment` does
    seen = []
    _build(messy, tmp_path / "messy" / "stochastok" / "chunk_001",
           processor=lambda ids, rng: (seen.append(rng.random()) or list(ids), {}))
    assert seen[3] == byte_rng(3, 1, 4).random() and seen[2] == byte_rng(3, 1, 2).random()
