"""The CPT corpus: raw files (SEA-PILE v2 from the Hub, or local files), their manifest, and the
deterministic contiguous split into N JSONL chunks (docs/design.md §2, §5).

Raw records are read one at a time (JSONL, JSONL.GZ, parquet), so a corpus of many GB never
sits in memory. Every record is classified by `parse_line`: a valid document, or one of the
bad-line kinds in BAD_LINE_KINDS. Bad lines are never dropped silently: with `on_bad_line: error`
the stage stops at file:line; with `skip`, split_chunks carries the bad line verbatim into its
chunk, so that the tokenize stage counts it per kind in the shard's sidecar (the one place a
reader looks for what a shard contains). Blank lines hold no record: every reader skips them
the same way (they still count in line numbers), and a UTF-8 byte order mark is accepted.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from morphcpt.errors import MorphcptError
from morphcpt.fileio import removed_on_failure, sha256_file, write_json_atomic

BAD_LINE_KINDS = ("malformed_json", "missing_text", "non_string_text", "empty_text", "invalid_utf8")
ON_BAD_LINE = ("error", "skip")
RAW_SUFFIXES = (".jsonl", ".jsonl.gz", ".json.gz", ".parquet")
MANIFEST_VERSION = 1
_COMMIT_RE = re.compile(r"[0-9a-f]{40}")


# -- one record -------------------------------------------------------------------------------

def parse_line(raw: bytes) -> tuple[str | None, str | None]:
    """(text, None) for a valid JSONL document line, else (None, bad-line kind)."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, "invalid_utf8"
    try:
        record = json.loads(line)
    except ValueError:
        return None, "malformed_json"
    return check_record(record)


def check_record(record: Any) -> tuple[str | None, str | None]:
    """(text, None) for a record whose `text` is a string with a non-whitespace character, else
    (None, kind). Whitespace-only text ("   \n", "\t") is no document either: it counts as empty_text."""
    if not isinstance(record, dict) or "text" not in record or record["text"] is None:
        return None, "missing_text"
    text = record["text"]
    if not isinstance(text, str):
        return None, "non_string_text"
    if not text.strip():
        return None, "empty_text"
    try:  # JSON escapes can carry lone surrogates ("\ud800"): not encodable, not a document
        text.encode("utf-8")
    except UnicodeEncodeError:
        return None, "invalid_utf8"
    return text, None


def bad_line_message(path: str | Path, line_no: int, kind: str) -> str:
    return (f"{path}:{line_no}: bad input line ({kind.replace('_', ' ')}); fix or remove the line, "
            "or set corpus.on_bad_line: skip to count such lines in the shard sidecars")


def check_on_bad_line(on_bad_line: str) -> None:
    if on_bad_line not in ON_BAD_LINE:
        raise MorphcptError(f"corpus.on_bad_line is {on_bad_line!r}; allowed: {', '.join(ON_BAD_LINE)}")


# -- raw files ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class RawRecord:
    """One record of a raw file: its 1-based line (or row) number, the line as written to a chunk,
    the text of a valid record, and the bad-line kind of an invalid one."""

    line_no: int
    chunk_line: bytes  # without the trailing newline
    text: str | None
    bad_kind: str | None


def raw_format(path: str | Path) -> str:
    name = str(path).lower()
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith((".jsonl.gz", ".json.gz")):
        return "jsonl.gz"
    if name.endswith(".jsonl"):
        return "jsonl"
    raise MorphcptError(f"{path}: unsupported corpus file type; use .jsonl, .jsonl.gz or .parquet")


UTF8_BOM = b"\xef\xbb\xbf"


def jsonl_lines(stream) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, line without its line ending) of a binary stream, the same way for
    every JSONL reader (raw corpus, chunks, `morphcpt segment`, `morphcpt tokstats` gold files): a
    final line without newline counts; a UTF-8 byte order mark at the start of the file is dropped
    (editors on Windows write one); blank lines are not records and are skipped, but they count in
    the line numbers."""
    for line_no, line in enumerate(stream, start=1):
        if line_no == 1 and line.startswith(UTF8_BOM):
            line = line[len(UTF8_BOM):]
        if line.endswith(b"\n"):
            line = line[:-1]
            if line.endswith(b"\r"):
                line = line[:-1]
        if line.strip():
            yield line_no, line


def iter_jsonl_texts(path: str | Path) -> Iterator[tuple[int, str | None, str | None]]:
    """(line number, text or None, bad-line kind or None) of each record of a `{"text": ...}` JSONL
    file, classified exactly as the shards classify chunk lines (parse_line)."""
    path = Path(path)
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise MorphcptError(f"{path}: cannot read ({exc.strerror})") from None
    with fh:
        for line_no, line in jsonl_lines(fh):
            text, kind = parse_line(line)
            yield line_no, text, kind


def iter_raw_records(path: str | Path, hasher: "hashlib._Hash | None" = None) -> Iterator[RawRecord]:
    """Stream the records of one raw file. With `hasher`, its bytes are hashed on the way."""
    path = Path(path)
    if not path.is_file():
        raise MorphcptError(f"{path}: corpus file not found; check corpus.local_path or rerun download_corpus")
    fmt = raw_format(path)
    if fmt == "parquet":
        yield from _iter_parquet(path, hasher)
        return
    with open(path, "rb") as fh:
        source = _HashingReader(fh, hasher) if hasher is not None else fh
        stream = gzip.GzipFile(fileobj=source, mode="rb") if fmt == "jsonl.gz" else source
        line_no = 0
        try:
            for line_no, line in jsonl_lines(stream):
                text, kind = parse_line(line)
                if kind is None:
                    line = json.dumps({"text": text}, ensure_ascii=False).encode("utf-8")
                yield RawRecord(line_no, line, text, kind)
        except (EOFError, gzip.BadGzipFile, zlib.error) as exc:  # truncated or damaged download
            raise MorphcptError(f"{path}: the gzip file is truncated or damaged after line {line_no} "
                                f"({type(exc).__name__}: {exc}); download it again (delete it and rerun "
                                "download_corpus, or replace the local file)") from None
        if hasher is not None:  # hash whatever gzip did not need to read
            while source.read(1 << 20):
                pass


def _iter_parquet(path: Path, hasher) -> Iterator[RawRecord]:
    if hasher is not None:  # parquet is read by column, not as a stream: hash it in its own pass
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                hasher.update(block)
    import pyarrow.parquet as pq

    pfile = pq.ParquetFile(path)
    if "text" not in pfile.schema_arrow.names:
        raise MorphcptError(f"{path}: parquet file has no 'text' column (columns: {', '.join(pfile.schema_arrow.names)})")
    row = 0
    for batch in pfile.iter_batches(batch_size=2048, columns=["text"]):
        for value in batch.column(0).to_pylist():
            row += 1
            text, kind = check_record({"text": value})
            if kind is None:
                line = json.dumps({"text": text}, ensure_ascii=False).encode("utf-8")
            else:  # carried into the chunk as a record the tokenize stage classifies the same way
                line = json.dumps({"text": value}, ensure_ascii=True, default=repr).encode("utf-8")
            yield RawRecord(row, line, text, kind)


class _HashingReader:
    """A read-only binary stream that hashes every byte it hands out."""

    def __init__(self, fh, hasher):
        self._fh, self._hasher = fh, hasher

    def read(self, n: int = -1) -> bytes:
        data = self._fh.read(n)
        self._hasher.update(data)
        return data

    def readline(self, n: int = -1) -> bytes:
        data = self._fh.readline(n)
        self._hasher.update(data)
        return data

    def __iter__(self):
        return iter(self.readline, b"")



def list_raw_files(path: str | Path) -> list[Path]:
    """A raw file, or every raw file under a folder (recursively, in sorted path order)."""
    path = Path(path)
    if path.is_file():
        raw_format(path)
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.name.lower().endswith(RAW_SUFFIXES)
                       and not any(part.startswith(".") for part in p.relative_to(path).parts))
        if not files:
            raise MorphcptError(f"{path}: no corpus files ({', '.join(RAW_SUFFIXES)}) in this folder")
        return files
    raise MorphcptError(f"{path}: corpus path not found; check corpus.local_path in the config")


# -- manifests ------------------------------------------------------------------------------------

def read_manifest(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise MorphcptError(f"{path}: manifest not found; rerun the stage that writes it")
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise MorphcptError(f"{path}: not a valid JSON manifest ({exc}); delete it and rerun its stage") from None


def is_pinned(revision: str) -> bool:
    return bool(_COMMIT_RE.fullmatch(revision or ""))


def local_corpus_inputs(corpus: dict[str, Any]) -> list[str]:
    """The download_corpus rule's inputs: a local corpus file or folder (an edit reruns the split).
    A missing one is left out here and reported by the stage itself in one line, so dry runs of
    other targets still resolve."""
    path = corpus.get("local_path")
    if corpus.get("source") == "local" and path and Path(path).exists():
        return [str(path)]
    return []


def download_corpus(corpus: dict[str, Any], manifest_path: str | Path, log=print) -> dict[str, Any]:
    """Fetch (hf) or locate (local) the raw corpus files and write the raw manifest.

    The manifest lists each raw file (absolute path, format, bytes, sha256) in reading order.
    Local files are not copied (a corpus can be many GB): split_chunks re-hashes them while it
    reads and stops if one changed since this manifest was written.
    """
    manifest_path = Path(manifest_path)
    source = corpus["source"]
    if source == "local":
        if not corpus.get("local_path"):
            raise MorphcptError("corpus.source is local but corpus.local_path is not set in the config")
        files = list_raw_files(corpus["local_path"])
        origin: dict[str, Any] = {"source": "local", "local_path": str(corpus["local_path"])}
    elif source == "hf":
        files, origin = _download_hf(corpus, manifest_path.parent / "hf", log)
    else:
        raise MorphcptError(f"corpus.source is {source!r}; allowed: hf, local")
    entries = []
    for path in files:
        entry = {"path": str(Path(path).resolve()), "format": raw_format(path), "bytes": Path(path).stat().st_size,
                 "sha256": sha256_file(path)}
        log(f"raw file {entry['path']}: {entry['bytes']} bytes, sha256 {entry['sha256']}")
        entries.append(entry)
    manifest = {"version": MANIFEST_VERSION, **origin, "files": entries}
    write_json_atomic(manifest_path, manifest)
    log(f"wrote {manifest_path}: {len(entries)} raw files, {sum(e['bytes'] for e in entries)} bytes")
    return manifest


def _download_hf(corpus: dict[str, Any], dest: Path, log) -> tuple[list[Path], dict[str, Any]]:
    """Only the files under `subset`/ of the dataset repo at `revision`; the token from the
    environment (morphcpt.hub: HF_TOKEN or HUGGING_FACE_HUB_TOKEN; never logged, never written)."""
    from huggingface_hub import HfApi, snapshot_download

    from morphcpt.hub import explain_hub_error, hf_token

    repo_id, revision, subset = corpus["hf_id"], corpus["revision"], corpus["subset"].strip("/")
    if not is_pinned(revision):
        log(f"warning: corpus.revision is {revision!r}, not a 40-hex commit: a rerun may download different "
            "data; pin the commit in the config")
    token = hf_token()

    def explained(exc: Exception, rev: str) -> MorphcptError:  # gated, 401/403, unknown revision, offline
        return MorphcptError(explain_hub_error(exc, repo_id, rev, repo_type="dataset", config_key="corpus",
                                               offline_fix="or copy the files and set corpus.source: local with corpus.local_path"))

    api = HfApi()
    try:
        info = api.dataset_info(repo_id, revision=revision, token=token)
        wanted = sorted(f for f in api.list_repo_files(repo_id, repo_type="dataset", revision=revision, token=token)
                        if f.startswith(subset + "/") and f.lower().endswith(RAW_SUFFIXES))
    except Exception as exc:
        raise explained(exc, revision) from None
    if not wanted:
        raise MorphcptError(f"{repo_id}@{revision} has no corpus files under {subset}/; check corpus.subset")
    log(f"downloading {len(wanted)} files of {repo_id}@{info.sha} under {subset}/ into {dest}")
    try:
        snapshot_download(repo_id, repo_type="dataset", revision=info.sha, allow_patterns=[f"{subset}/*"],
                          local_dir=str(dest), token=token)
    except Exception as exc:
        raise explained(exc, info.sha) from None
    files = [dest / f for f in wanted]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise MorphcptError(f"download incomplete, missing {missing[0]} (+{len(missing) - 1} more); rerun the rule")
    return files, {"source": "hf", "hf_id": repo_id, "revision": revision, "commit": info.sha, "subset": subset}


# -- chunks ----------------------------------------------------------------------------------------

def chunk_ranges(n_records: int, n_chunks: int) -> list[tuple[int, int]]:
    """Contiguous [start, end) record ranges of n_chunks near-equal chunks, in order."""
    if n_chunks < 1:
        raise MorphcptError(f"corpus.chunks must be at least 1, got {n_chunks}")
    if n_records < n_chunks:
        raise MorphcptError(f"the corpus has {n_records} records, fewer than corpus.chunks={n_chunks}; "
                            "lower corpus.chunks in the config")
    bounds = [n_records * i // n_chunks for i in range(n_chunks + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def _iter_manifest_records(manifest: dict[str, Any], manifest_path: Path, on_bad_line: str,
                           verify_hash: bool) -> Iterator[tuple[str, RawRecord]]:
    for entry in manifest["files"]:
        hasher = hashlib.sha256() if verify_hash else None
        for record in iter_raw_records(entry["path"], hasher):
            if record.bad_kind is not None and on_bad_line == "error":
                raise MorphcptError(bad_line_message(entry["path"], record.line_no, record.bad_kind))
            yield entry["path"], record
        if hasher is not None and hasher.hexdigest() != entry["sha256"]:
            raise MorphcptError(f"{entry['path']}: sha256 {hasher.hexdigest()} differs from {manifest_path} "
                                f"({entry['sha256']}): the raw file changed; rerun download_corpus")


def split_chunks(manifest_path: str | Path, chunk_paths: list[str | Path], chunks_manifest_path: str | Path,
                 on_bad_line: str = "error", log=print) -> dict[str, Any]:
    """Split the raw corpus into len(chunk_paths) contiguous JSONL chunks in two streamed passes.

    Pass 1 counts records and checks each raw file's sha256 against the raw manifest; pass 2
    writes record ranges [i·R/N, (i+1)·R/N) to temporary files, renamed only when all are complete.
    """
    check_on_bad_line(on_bad_line)
    manifest_path = Path(manifest_path)
    manifest = read_manifest(manifest_path)
    n_records = sum(1 for _ in _iter_manifest_records(manifest, manifest_path, on_bad_line, verify_hash=True))
    if n_records == 0:
        files = [e["path"] for e in manifest["files"]]
        raise MorphcptError(f"the corpus has no records: {', '.join(files[:3])}{' ...' if len(files) > 3 else ''} "
                            f"(listed in {manifest_path}) hold only blank lines or nothing; point corpus.local_path "
                            "(or corpus.hf_id/subset) at the corpus files, then rerun download_corpus")
    ranges = chunk_ranges(n_records, len(chunk_paths))
    log(f"{n_records} records in {len(manifest['files'])} raw files -> {len(chunk_paths)} chunks")

    chunk_paths = [Path(p) for p in chunk_paths]
    tmp_paths = [p.with_name(f".{p.name}.tmp-{os.getpid()}") for p in chunk_paths]
    for p in chunk_paths:
        p.parent.mkdir(parents=True, exist_ok=True)
    entries: list[dict[str, Any]] = []
    records = _iter_manifest_records(manifest, manifest_path, on_bad_line, verify_hash=False)
    # The chunks hold each record once: about the raw JSONL's bytes (more for gzip or parquet input).
    # Out of space: temporary files, renamed chunks and the manifest go, and one line says so.
    needed = sum(e["bytes"] for e in manifest["files"])
    with removed_on_failure([*tmp_paths, *chunk_paths, Path(chunks_manifest_path)], chunk_paths[0].parent, needed):
        for (start, end), tmp in zip(ranges, tmp_paths):
            bad: dict[str, int] = {}
            first = last = None
            with open(tmp, "wb") as out:
                for _ in range(end - start):
                    path, record = next(records)
                    out.write(record.chunk_line + b"\n")
                    if record.bad_kind is not None:
                        bad[record.bad_kind] = bad.get(record.bad_kind, 0) + 1
                    first = first or f"{path}:{record.line_no}"
                    last = f"{path}:{record.line_no}"
            entries.append({"records": end - start, "first_record": start, "from": first, "to": last,
                            "bad_lines": dict(sorted(bad.items()))})
        if next(records, None) is not None:  # pass 2 must see exactly what pass 1 counted
            raise MorphcptError(f"raw corpus changed between passes of split_chunks ({manifest_path}); rerun")
        for tmp, entry, final in zip(tmp_paths, entries, chunk_paths):
            entry["path"] = str(final)
            entry["bytes"] = tmp.stat().st_size
            entry["sha256"] = sha256_file(tmp)
        for tmp, final in zip(tmp_paths, chunk_paths):
            tmp.replace(final)
        chunks_manifest = {"version": MANIFEST_VERSION, "raw_manifest": str(manifest_path),
                           "raw_sha256": [e["sha256"] for e in manifest["files"]], "records": n_records,
                           "on_bad_line": on_bad_line, "chunks": entries}
        write_json_atomic(chunks_manifest_path, chunks_manifest)
    for entry in entries:
        log(f"{entry['path']}: {entry['records']} records, bad lines {entry['bad_lines'] or 'none'}, sha256 {entry['sha256']}")
    return chunks_manifest


def iter_chunk_documents(path: str | Path, hasher=None) -> Iterator[tuple[int, str | None, str | None]]:
    """(1-based line number, text or None, bad-line kind or None) for each line of a chunk.
    With `hasher`, the chunk's bytes are hashed on the way."""
    path = Path(path)
    if not path.is_file():
        raise MorphcptError(f"{path}: chunk file not found; rerun split_chunks")
    with open(path, "rb") as fh:
        source = _HashingReader(fh, hasher) if hasher is not None else fh
        for line_no, line in jsonl_lines(source):
            text, kind = parse_line(line)
            yield line_no, text, kind


def count_lines(path: str | Path) -> int:
    n = 0
    last = b"\n"
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            n += block.count(b"\n")
            last = block[-1:]
    return n + (last != b"\n")
