"""Verifying a shard (`morphcpt verify-shards PREFIX...`): read it back with megatron-core's
IndexedDataset and check it against its sidecar, a stochastok/patok shard against the vanilla
shard of the same chunk (same bytes per document, realised ratio as recorded), and a sample of
documents against the chunk's text when it is at hand.
"""

from __future__ import annotations

import functools
import random
import struct
import sys
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from morphcpt.corpus import iter_chunk_documents
from morphcpt.errors import MorphcptError
from morphcpt.fileio import sha256_file
from morphcpt.shards.build import SIDECAR_KEYS, read_sidecar


# -- verifying a shard ------------------------------------------------------------------------------

def vanilla_prefix(prefix: str | Path) -> Path:
    """The vanilla shard of the same tokenizer and chunk: results/shards/{tok}/vanilla/chunk_C."""
    prefix = Path(prefix)
    return prefix.parent.parent / "vanilla" / prefix.name


_INDEX_MAGIC = b"MMIDIDX\x00\x00"  # megatron-core's .idx header: magic, version <Q, dtype code <B, counts <Q <Q
_INDEX_HEADER_BYTES = 9 + 8 + 1 + 8 + 8


def check_index_file(idx_path: str | Path) -> tuple[int, int]:
    """(sequence count, document count) of a Megatron .idx whose size is exactly what its header
    describes. Caught here, before megatron-core maps it: a truncated file (megatron-core would fail
    with a buffer error and a `__del__` traceback) and bytes after the index (it would ignore them)."""
    idx_path = Path(idx_path)
    size = idx_path.stat().st_size
    with open(idx_path, "rb") as fh:
        header = fh.read(_INDEX_HEADER_BYTES)
    rebuild = "; delete the shard's .bin/.idx/.json and rerun the tokenize rule"
    if len(header) < _INDEX_HEADER_BYTES or header[:9] != _INDEX_MAGIC:
        raise MorphcptError(f"{idx_path}: not a Megatron index (header missing or wrong, {size} bytes){rebuild}")
    version, _code, sequences, documents = struct.unpack("<QBQQ", header[9:])
    if version != 1:
        raise MorphcptError(f"{idx_path}: Megatron index version {version}, expected 1{rebuild}")
    expected = _INDEX_HEADER_BYTES + sequences * (4 + 8) + documents * 8
    if size < expected:
        raise MorphcptError(f"{idx_path}: truncated: {size} bytes, its header describes {sequences} sequences "
                            f"({expected} bytes){rebuild}")
    if size > expected:
        raise MorphcptError(f"{idx_path}: {size - expected} unexpected bytes after the end of the index ({expected} "
                            f"bytes for {sequences} sequences): appended or overwritten{rebuild}")
    return sequences, documents


class _ShardView:
    """A shard read back through megatron-core's IndexedDataset, with its sidecar."""

    def __init__(self, prefix: str | Path):
        from megatron.core.datasets.indexed_dataset import IndexedDataset

        self.prefix = Path(prefix)
        for suffix in (".bin", ".idx"):
            if not Path(str(prefix) + suffix).is_file():
                raise MorphcptError(f"{prefix}{suffix}: shard file not found; rebuild it with the tokenize rule")
        self.sidecar = read_sidecar(prefix)
        check_index_file(str(prefix) + ".idx")
        try:
            self.dataset = IndexedDataset(str(prefix), mmap=True)
        except Exception as exc:
            _collect_quietly()
            raise MorphcptError(f"{prefix}: megatron-core cannot read this shard ({type(exc).__name__}: {exc})") from None

    def document(self, i: int):
        return self.dataset[i]


def _collect_quietly() -> None:
    """Collect a half-built IndexedDataset now: its __del__ fails on the attributes it never got and
    would print an `Exception ignored` traceback after our one-line message."""
    import gc

    hook, sys.unraisablehook = sys.unraisablehook, lambda unraisable: None
    try:
        gc.collect()
    finally:
        sys.unraisablehook = hook


def resolve_recorded_path(recorded: str | None, sidecar: dict[str, Any], prefix: str | Path) -> Path | None:
    """A path a sidecar recorded relative to the directory the tokenize job ran in (its `workdir`),
    found from any directory: under that workdir, under a folder above the shard (a results tree
    moved as a whole, or a sidecar without `workdir`), else relative to the current directory."""
    if not recorded:
        return None
    path = Path(recorded)
    if path.is_absolute():
        return path
    candidates = [Path(sidecar["workdir"]) / path] if sidecar.get("workdir") else []
    candidates += [folder / path for folder in Path(prefix).resolve().parents]
    candidates.append(path)
    return next((c for c in candidates if c.exists()), path)


@functools.lru_cache(maxsize=4)
def _load_adapter(tokenizer_dir: str):
    from morphcpt.tokenization import TokenizerAdapter

    return TokenizerAdapter.from_dir(tokenizer_dir)


def verify_shard(prefix: str | Path, tokenizer_dir: str | Path | None = None, sample: int = 64,
                 sample_seed: int = 0, adapter: Any = None) -> dict[str, Any]:
    """Check one shard against its sidecar, a stochastok/patok shard against the vanilla shard of
    its chunk, and a sample of documents against the chunk's text when the chunk is at hand.
    The tokenizer comes from `adapter`, else `tokenizer_dir`, else the sidecar's tokenizer_dir.
    Raises MorphcptError naming the shard and the first failed check; returns a summary."""
    given_adapter = adapter

    shard = _ShardView(prefix)
    sc, ds = shard.sidecar, shard.dataset

    def fail(message: str):
        raise MorphcptError(f"{prefix}: {message}")

    for key in SIDECAR_KEYS:
        if key not in sc:
            fail(f"sidecar lacks '{key}'; rebuild the shard")
    if np.dtype(ds.index.dtype).name != sc["dtype"]:
        fail(f"dtype {np.dtype(ds.index.dtype).name} differs from the sidecar's {sc['dtype']}")
    if len(ds) != sc["documents"] or len(ds.document_indices) - 1 != sc["documents"]:
        fail(f"{len(ds)} documents, the sidecar says {sc['documents']}")
    lengths = np.asarray(ds.sequence_lengths, dtype=np.int64)
    n_tokens = int(lengths.sum())
    if n_tokens != sc["tokens_out"] + 2 * sc["documents"]:
        fail(f"{n_tokens} tokens on disk, the sidecar says {sc['tokens_out']} + bos/eos of {sc['documents']} documents")
    if sc["tokens_in"] and abs(sc["ratio"] - sc["tokens_out"] / sc["tokens_in"]) > 1e-12:
        fail(f"sidecar ratio {sc['ratio']} is not tokens_out/tokens_in")
    bin_bytes, itemsize = Path(str(prefix) + ".bin").stat().st_size, np.dtype(sc["dtype"]).itemsize
    if bin_bytes != n_tokens * itemsize:
        fail(f".bin has {bin_bytes} bytes, the .idx describes {n_tokens} tokens of {itemsize} bytes "
             f"({n_tokens * itemsize} bytes): truncated or appended; rebuild the shard")
    tokens = np.memmap(str(prefix) + ".bin", dtype=sc["dtype"], mode="r")
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    if (lengths < 3).any():
        fail(f"document {int(np.argmax(lengths < 3))} has fewer than 3 ids (bos, text, eos)")
    if (tokens[starts] != sc["bos_id"]).any():
        fail(f"document {int(np.argmax(tokens[starts] != sc['bos_id']))} does not start with bos {sc['bos_id']}")
    if (tokens[starts + lengths - 1] != sc["eos_id"]).any():
        fail(f"document {int(np.argmax(tokens[starts + lengths - 1] != sc['eos_id']))} does not end with eos {sc['eos_id']}")
    n_specials = int((tokens == sc["bos_id"]).sum()) + (int((tokens == sc["eos_id"]).sum()) if sc["eos_id"] != sc["bos_id"] else 0)
    if n_specials != 2 * sc["documents"]:
        fail(f"{n_specials} bos/eos ids for {sc['documents']} documents: bos/eos inside a document")
    lo, hi = int(tokens.min()), int(tokens.max())
    if lo < 0 or hi >= sc["vocab_size"]:
        fail(f"ids span [{lo}, {hi}], outside the vocabulary of size {sc['vocab_size']}")

    summary = {"prefix": str(prefix), "mode": sc["mode"], "documents": sc["documents"], "tokens_in": sc["tokens_in"],
               "tokens_out": sc["tokens_out"], "ratio": sc["ratio"], "checked_against_vanilla": 0,
               "checked_against_text": 0}
    indices = sorted(random.Random(sample_seed).sample(range(sc["documents"]), min(sample, sc["documents"])))
    adapter = None
    if sc["mode"] == "vanilla":
        if sc["tokens_in"] != sc["tokens_out"]:
            fail(f"vanilla shard with tokens_out {sc['tokens_out']} != tokens_in {sc['tokens_in']}")
    else:
        vprefix = vanilla_prefix(prefix)
        if not Path(str(vprefix) + ".bin").is_file():
            fail(f"the vanilla shard {vprefix} of the same chunk is missing; build it to verify a {sc['mode']} shard")
        vanilla = _ShardView(vprefix)
        vsc = vanilla.sidecar
        for key in ("tokenizer_fingerprint", "chunk", "documents", "bad_lines"):
            if vsc.get(key) != sc.get(key):
                fail(f"{key} {sc.get(key)!r} differs from the vanilla shard's {vsc.get(key)!r}: not the same chunk/tokenizer")
        if vsc.get("chunk_sha256") and sc.get("chunk_sha256") and vsc["chunk_sha256"] != sc["chunk_sha256"]:
            fail("built from a different chunk file than the vanilla shard (chunk_sha256 differs)")
        if sc["tokens_in"] != vsc["tokens_out"]:
            fail(f"tokens_in {sc['tokens_in']} differs from the vanilla shard's {vsc['tokens_out']} canonical tokens")
        vlengths = np.asarray(vanilla.dataset.sequence_lengths, dtype=np.int64)
        realised = (n_tokens - 2 * sc["documents"]) / (int(vlengths.sum()) - 2 * vsc["documents"])
        if abs(realised - sc["ratio"]) > 1e-9:
            fail(f"token ratio against the vanilla shard is {realised:.6f}, the sidecar says {sc['ratio']:.6f}")
        summary["ratio_vs_vanilla"] = realised
        changes_expected = any(isinstance(v, (int, float)) and v > 0 for v in sc["params"].values())
        if changes_expected and sc["tokens_in"] >= 200 and lengths.shape == vlengths.shape and (lengths == vlengths).all():
            vtokens = np.memmap(str(vprefix) + ".bin", dtype=vsc["dtype"], mode="r")
            if np.array_equal(tokens, vtokens):
                fail(f"identical to the vanilla shard although {sc['mode']} params {sc['params']} should change ids: "
                     "the expansion did not reach the shard")
        adapter = _adapter_for(sc, tokenizer_dir, fail, given_adapter, prefix)
        for i in indices:
            ids, vids = shard.document(i), vanilla.document(i)
            if adapter.decode_bytes([int(x) for x in ids[1:-1]]) != adapter.decode_bytes([int(x) for x in vids[1:-1]]):
                fail(f"document {i} decodes to different bytes than the vanilla shard's document {i}")
        summary["checked_against_vanilla"] = len(indices)

    # The sampled documents against the text of the chunk they were made from, when it is at hand
    # (shards copied elsewhere without their chunks are checked against vanilla only: said in the summary).
    chunk_path = resolve_recorded_path(sc.get("source_chunk"), sc, prefix) or Path("")
    if chunk_path.is_file() and sc.get("chunk_sha256"):
        if sha256_file(chunk_path) != sc["chunk_sha256"]:
            fail(f"its chunk {chunk_path} changed since the shard was built (sha256 differs); rerun tokenize")
        adapter = adapter or _adapter_for(sc, tokenizer_dir, fail, given_adapter, prefix)
        for i, text in _documents_at(chunk_path, indices):
            ids = [int(x) for x in shard.document(i)[1:-1]]
            if adapter.decode_bytes(ids) != text.encode("utf-8"):
                fail(f"document {i} does not decode to the text of its line in {chunk_path}")
            if sc["mode"] == "vanilla" and ids != list(adapter.encode(text)):
                fail(f"document {i} is not the canonical encoding of its text in {chunk_path}")
        summary["checked_against_text"] = len(indices)
    return summary


def _adapter_for(sidecar: dict[str, Any], tokenizer_dir, fail, given=None, prefix: str | Path = "."):
    tok_dir = Path(tokenizer_dir) if tokenizer_dir else resolve_recorded_path(sidecar.get("tokenizer_dir"), sidecar, prefix)
    tok_dir = tok_dir or Path("")
    if given is None and not tok_dir.is_dir():
        fail("no tokenizer folder to decode with: pass --tokenizer-dir")
    adapter = given if given is not None else _load_adapter(str(tok_dir.resolve()))
    if adapter.fingerprint != sidecar["tokenizer_fingerprint"]:
        fail(f"tokenizer {tok_dir if given is None else 'given'} (fingerprint {adapter.fingerprint[:12]}) is not the shard's "
             f"({sidecar['tokenizer_fingerprint'][:12]})")
    return adapter


def _documents_at(chunk_path: Path, indices: list[int]) -> Iterator[tuple[int, str]]:
    """(document index, text) of the wanted documents; bad lines are not documents."""
    wanted = set(indices)
    doc = 0
    for _, text, kind in iter_chunk_documents(chunk_path):
        if kind is not None:
            continue
        if doc in wanted:
            yield doc, text
        doc += 1
