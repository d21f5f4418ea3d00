"""download_corpus (local and mocked Hub) and split_chunks: streamed, contiguous, deterministic,
sha256-checked, loud about bad lines."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pytest

from morphcpt.corpus import (BAD_LINE_KINDS, chunk_ranges, download_corpus, iter_raw_records, parse_line,
                             read_manifest, split_chunks)
from morphcpt.errors import MorphcptError

from shard_testlib import BAD_FIXTURES, small_corpus, write_jsonl


def _local(path) -> dict:
    return {"source": "local", "local_path": str(path), "chunks": 2, "on_bad_line": "error"}


def _split(tmp_path, raw, n_chunks, on_bad_line="error"):
    manifest = tmp_path / "raw" / "manifest.json"
    download_corpus(_local(raw), manifest, log=lambda m: None)
    chunks = [tmp_path / "chunks" / f"chunk_{i:03d}.jsonl" for i in range(n_chunks)]
    result = split_chunks(manifest, chunks, tmp_path / "chunks" / "manifest.json", on_bad_line=on_bad_line,
                          log=lambda m: None)
    return chunks, result


def _texts(path: Path) -> list[str]:
    return [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines()]


def test_every_bad_kind_has_a_fixture_and_is_classified():
    assert sorted(BAD_FIXTURES) == sorted(BAD_LINE_KINDS)
    for kind, path in BAD_FIXTURES.items():
        kinds = [parse_line(line)[1] for line in path.read_bytes().splitlines()]
        assert kinds == [None, kind, None, None], kind


def test_lone_surrogate_counts_as_invalid_utf8():
    assert parse_line(b'{"text": "a\\ud800b"}') == (None, "invalid_utf8")
    assert parse_line(b'{"text": null}') == (None, "missing_text")
    assert parse_line(b'[1, 2]') == (None, "missing_text")
    assert parse_line(b'{"text": 5}') == (None, "non_string_text")
    assert parse_line('{"text": "ñ ✓"}'.encode()) == ("ñ ✓", None)


def test_whitespace_only_text_is_empty_text():
    for blank in ("   \n", "\t  ", "\u3000\u00a0", "\r\n"):
        assert parse_line(json.dumps({"text": blank}).encode()) == (None, "empty_text"), repr(blank)
    assert parse_line(b'{"text": " a "}') == (" a ", None)  # text with surrounding spaces is kept as written


def test_whitespace_only_documents_are_refused_or_counted(tmp_path):
    raw = write_jsonl(tmp_path / "raw.jsonl", ["Kumain na ako.", "   \n", "\t  ", "Naglalaro ang bata."])
    with pytest.raises(MorphcptError, match=r"raw.jsonl:2: bad input line \(empty text\)"):
        _split(tmp_path / "a", raw, 2)
    chunks, manifest = _split(tmp_path / "b", raw, 2, on_bad_line="skip")
    assert [c["bad_lines"] for c in manifest["chunks"]] == [{"empty_text": 1}, {"empty_text": 1}]


@pytest.mark.parametrize("n_records,n_chunks", [(10, 3), (7, 7), (1000, 20), (5, 1)])
def test_chunk_ranges_are_contiguous_and_balanced(n_records, n_chunks):
    ranges = chunk_ranges(n_records, n_chunks)
    assert len(ranges) == n_chunks and ranges[0][0] == 0 and ranges[-1][1] == n_records
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
    sizes = [e - s for s, e in ranges]
    assert max(sizes) - min(sizes) <= 1 and min(sizes) >= 1


def test_fewer_records_than_chunks_stops():
    with pytest.raises(MorphcptError, match="fewer than corpus.chunks=5"):
        chunk_ranges(3, 5)


def test_empty_corpus_says_so_and_not_lower_chunks(tmp_path):
    raw = tmp_path / "empty.jsonl"
    raw.write_text("\n  \n")
    with pytest.raises(MorphcptError, match=r"the corpus has no records: .*empty.jsonl") as info:
        _split(tmp_path, raw, 1)
    assert "lower corpus.chunks" not in str(info.value)
    assert not (tmp_path / "chunks" / "chunk_000.jsonl").exists()


def test_split_keeps_order_and_every_document(tmp_path):
    texts = small_corpus(41)
    raw = write_jsonl(tmp_path / "in" / "corpus.jsonl", texts)
    chunks, manifest = _split(tmp_path, raw, 4)
    got = [t for c in chunks for t in _texts(c)]
    assert got == texts
    assert [c["records"] for c in manifest["chunks"]] == [10, 10, 10, 11]
    for chunk, entry in zip(chunks, manifest["chunks"]):
        assert entry["sha256"] == hashlib.sha256(chunk.read_bytes()).hexdigest()
    assert not list((tmp_path / "chunks").glob(".*tmp*"))


def test_split_is_deterministic(tmp_path):
    raw = write_jsonl(tmp_path / "in" / "corpus.jsonl", small_corpus(30))
    first, _ = _split(tmp_path / "a", raw, 3)
    second, _ = _split(tmp_path / "b", raw, 3)
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]


def test_folder_of_mixed_formats_is_read_in_path_order(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    texts = small_corpus(12)
    folder = tmp_path / "in"
    write_jsonl(folder / "a.jsonl", texts[:4])
    with gzip.open(folder / "b.jsonl.gz", "wt", encoding="utf-8") as fh:
        for t in texts[4:8]:
            fh.write(json.dumps({"text": t}) + "\n")
    pq.write_table(pa.table({"text": texts[8:], "url": ["u"] * 4}), folder / "c.parquet")
    (folder / "notes.txt").write_text("not a corpus file")
    chunks, manifest = _split(tmp_path, folder, 3)
    assert [t for c in chunks for t in _texts(c)] == texts
    raw = read_manifest(tmp_path / "raw" / "manifest.json")
    assert [Path(f["path"]).name for f in raw["files"]] == ["a.jsonl", "b.jsonl.gz", "c.parquet"]


def test_parquet_bad_rows_are_classified(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "x.parquet"
    pq.write_table(pa.table({"text": ["mabuti", None, ""]}), path)
    assert [r.bad_kind for r in iter_raw_records(path)] == [None, "missing_text", "empty_text"]
    # a bad row travels into its chunk as a line the tokenize stage classifies the same way
    assert [parse_line(r.chunk_line)[1] for r in iter_raw_records(path)] == [None, "missing_text", "empty_text"]


@pytest.mark.parametrize("kind", BAD_LINE_KINDS)
def test_bad_line_stops_the_split_with_file_and_line(tmp_path, kind):
    with pytest.raises(MorphcptError, match=rf"{kind}\.jsonl:2: bad input line"):
        _split(tmp_path, BAD_FIXTURES[kind], 2)
    assert not list((tmp_path / "chunks").glob("*.jsonl")) if (tmp_path / "chunks").exists() else True


@pytest.mark.parametrize("kind", BAD_LINE_KINDS)
def test_skip_carries_the_bad_line_into_its_chunk(tmp_path, kind):
    chunks, manifest = _split(tmp_path, BAD_FIXTURES[kind], 2, on_bad_line="skip")
    assert manifest["chunks"][0]["bad_lines"] == {kind: 1}
    assert manifest["chunks"][1]["bad_lines"] == {}
    kinds = [parse_line(line)[1] for c in chunks for line in c.read_bytes().splitlines()]
    assert kinds == [None, kind, None, None]


def test_changed_raw_file_is_detected(tmp_path):
    raw = write_jsonl(tmp_path / "in" / "corpus.jsonl", small_corpus(6))
    manifest = tmp_path / "raw" / "manifest.json"
    download_corpus(_local(raw), manifest, log=lambda m: None)
    with open(raw, "a") as fh:
        fh.write(json.dumps({"text": "Dagdag na linya."}) + "\n")
    with pytest.raises(MorphcptError, match="differs from .*rerun download_corpus"):
        split_chunks(manifest, [tmp_path / "c0.jsonl"], tmp_path / "m.json", log=lambda m: None)
    assert not (tmp_path / "c0.jsonl").exists()


def test_missing_local_corpus_is_one_line(tmp_path):
    with pytest.raises(MorphcptError, match="corpus path not found; check corpus.local_path") as err:
        download_corpus(_local(tmp_path / "nope.jsonl"), tmp_path / "m.json", log=lambda m: None)
    assert "\n" not in str(err.value)


def test_hf_download_only_the_subset_pinned_and_token_never_logged(tmp_path, monkeypatch):
    import huggingface_hub

    secret = "hf_SECRETtoken123"
    monkeypatch.setenv("HF_TOKEN", secret)
    calls = {}
    commit = "c" * 40

    class FakeApi:
        def dataset_info(self, repo_id, revision=None, token=None):
            calls["info"] = (repo_id, revision, token)
            return type("Info", (), {"sha": commit})()

        def list_repo_files(self, repo_id, repo_type=None, revision=None, token=None):
            calls["list"] = (repo_id, repo_type, revision)
            return ["README.md", "tl/train-00000-of-00002.parquet", "tl/train-00001-of-00002.parquet",
                    "th/train-00000-of-00054.parquet"]

    def fake_snapshot(repo_id, repo_type=None, revision=None, allow_patterns=None, local_dir=None, token=None):
        import pyarrow as pa
        import pyarrow.parquet as pq

        calls["snapshot"] = dict(repo_id=repo_id, repo_type=repo_type, revision=revision,
                                 allow_patterns=allow_patterns, token=token)
        for i in range(2):
            Path(local_dir, "tl").mkdir(parents=True, exist_ok=True)
            pq.write_table(pa.table({"text": [f"dokumento {i}"]}), Path(local_dir, "tl", f"train-0000{i}-of-00002.parquet"))
        return local_dir

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot)
    log: list[str] = []
    corpus = {"source": "hf", "hf_id": "aisingapore/SEA-PILE-v2", "revision": "main", "subset": "tl"}
    manifest = download_corpus(corpus, tmp_path / "raw" / "manifest.json", log=log.append)
    assert calls["list"] == ("aisingapore/SEA-PILE-v2", "dataset", "main")
    assert calls["snapshot"]["repo_type"] == "dataset" and calls["snapshot"]["revision"] == commit
    assert calls["snapshot"]["allow_patterns"] == ["tl/*"] and calls["snapshot"]["token"] == secret
    assert [Path(f["path"]).name for f in manifest["files"]] == ["train-00000-of-00002.parquet",
                                                                  "train-00001-of-00002.parquet"]
    assert manifest["commit"] == commit
    assert any("not a 40-hex commit" in line for line in log)
    written = (tmp_path / "raw" / "manifest.json").read_text()
    assert secret not in written and all(secret not in line for line in log)

    log.clear()
    download_corpus({**corpus, "revision": commit}, tmp_path / "raw2" / "manifest.json", log=log.append)
    assert not any("40-hex" in line for line in log)


def test_truncated_gzip_is_named_with_its_file(tmp_path):
    raw = tmp_path / "raw.jsonl.gz"
    whole = gzip.compress("".join(json.dumps({"text": t}) + "\n" for t in small_corpus(300)).encode())
    raw.write_bytes(whole[: len(whole) // 2])  # an interrupted download
    with pytest.raises(MorphcptError) as info:
        _split(tmp_path, raw, 2)
    message = str(info.value)
    assert message.startswith(f"{raw}: the gzip file is truncated or damaged") and "download it again" in message
    assert "\n" not in message
    assert not list(tmp_path.glob("chunks/*.jsonl"))  # no partial chunks


def test_bom_and_blank_lines_are_read_like_every_other_reader(tmp_path):
    """A UTF-8 BOM is accepted; blank lines are not records but count in line numbers (a bad line
    after them is reported at its own line), in the raw corpus and in chunks alike."""
    from morphcpt.corpus import iter_chunk_documents

    raw = tmp_path / "raw.jsonl"
    raw.write_bytes(b'\xef\xbb\xbf{"text": "una"}\r\n\r\n{"text": "ikalawa"}\n  \n{"text": "ikatlo"}\n\n')
    assert [(r.line_no, r.text) for r in iter_raw_records(raw)] == [(1, "una"), (3, "ikalawa"), (5, "ikatlo")]
    assert [(n, t) for n, t, _ in iter_chunk_documents(raw)] == [(1, "una"), (3, "ikalawa"), (5, "ikatlo")]
    chunks, result = _split(tmp_path, raw, 2)
    assert result["records"] == 3 and _texts(chunks[0]) + _texts(chunks[1]) == ["una", "ikalawa", "ikatlo"]
    raw.write_bytes(b'{"text": "una"}\n\n\n{"text": ""}\n')
    with pytest.raises(MorphcptError, match=r"raw.jsonl:4: bad input line \(empty text\)"):
        _split(tmp_path / "again", raw, 1)
