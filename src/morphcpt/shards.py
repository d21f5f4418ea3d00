"""Megatron .bin/.idx shards per tokenizer x mode x chunk, with JSON sidecars (docs/design.md §5).

`build_shard` turns one JSONL chunk into one shard: canonical ids from the tokenizer, the mode's
processor over them (StochasTok/Patok ids are written as they are: never decoded to text and
re-tokenized), each document wrapped in the tokenizer's own bos/eos, written with megatron-core's
IndexedDatasetBuilder. Each document's randomness comes from document_rng(seed, chunk, line), so
any number of worker processes gives byte-identical files. Outputs are written under temporary
names and renamed only when complete; the sidecar is renamed last.

`verify_shard` (CLI `morphcpt verify-shards PREFIX...`) reads a shard back with megatron-core's
IndexedDataset and checks it against its sidecar, and a stochastok/patok shard against the vanilla
shard of the same chunk (same bytes per document, realised ratio as recorded).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import random
import struct
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from morphcpt.corpus import bad_line_message, check_on_bad_line, count_lines, iter_chunk_documents, sha256_file
from morphcpt.errors import MorphcptError

SIDECAR_VERSION = 1
PACKAGE_DIR = Path(__file__).resolve().parent
_SOURCE_SUFFIXES = (".py", ".txt", ".json", ".tsv", ".yaml", ".csv")
ALL_MODES = ("vanilla", "stochastok", "patok")
# The one place that says which tokenize jobs a source file feeds (paths under src/morphcpt/).
# The tokenize rule declares each mode's files as inputs of that mode's jobs only, so an edit
# reruns the shards of the modes that use the file and their descendants, nothing else.
# Vanilla: shard writer, chunk-line parser and tokenizer adapter; StochasTok: + split table and
# expander; Patok: + affix code and inventory. `()` marks a module that never runs while a shard
# is written. A file of tokenization/ missing here counts for every mode (never silently
# untracked), and tests/shards/test_build_shard.py fails until it is listed.
SOURCE_MODES: dict[str, tuple[str, ...]] = {
    "shards.py": ALL_MODES,
    "corpus.py": ALL_MODES,
    "tokenization/__init__.py": ALL_MODES,
    "tokenization/adapter.py": ALL_MODES,
    "tokenization/modes.py": ALL_MODES,  # make_processor, the vanilla processor
    "tokenization/params.py": ALL_MODES,  # mode parameters, the per-document Generator
    "tokenization/stochastok.py": ("stochastok", "patok"),  # the expander (Patok expands too)
    "tokenization/patok.py": ("patok",),
    "tokenization/split_table.py": ("stochastok", "patok"),
    "tokenization/affixes.py": ("patok",),
    "tokenization/affixes_filipino.txt": ("patok",),
    "tokenization/cutter.py": ("patok",),
    "tokenization/root_lexicon.txt": ("patok",),
    "tokenization/closed_class_words.txt": ("patok",),
    "tokenization/cli.py": (),
    "tokenization/tokstats.py": (),
}
# Sidecar keys other stages read (train checks the fingerprint); keep the names.
SIDECAR_KEYS = ("tokenizer_fingerprint", "vocab_size", "bos_id", "eos_id", "dtype", "mode", "params", "seed",
                "chunk", "documents", "tokens_in", "tokens_out", "ratio", "counters", "code_version", "bad_lines")
_BATCH = 256  # documents per work item handed to a worker process


# -- provenance --------------------------------------------------------------------------------

def _tokenization_files(package_dir: Path) -> list[str]:
    """Every source or data file of the tokenization package, as a path under `package_dir`."""
    root = package_dir / "tokenization"
    return sorted(p.relative_to(package_dir).as_posix() for p in root.rglob("*")
                  if p.is_file() and p.suffix in _SOURCE_SUFFIXES and "__pycache__" not in p.parts)


def unassigned_sources(package_dir: str | Path = PACKAGE_DIR) -> list[str]:
    """Files of the tokenization package that SOURCE_MODES does not list (they count for every mode)."""
    return [rel for rel in _tokenization_files(Path(package_dir)) if rel not in SOURCE_MODES]


def preprocessor_sources(package_dir: str | Path = PACKAGE_DIR, mode: str | None = None) -> list[Path]:
    """The files whose content decides the bytes of a `mode` shard (every mode's with mode=None):
    the files SOURCE_MODES gives that mode, plus any unlisted file of the tokenization package.
    The tokenize rule declares them as inputs, so an edit reruns that mode's shards and
    everything downstream, nothing upstream. A mode outside ALL_MODES gets every file."""
    package_dir = Path(package_dir)
    wanted = set(ALL_MODES) if mode is None or mode not in ALL_MODES else {mode}
    listed = [rel for rel, modes in SOURCE_MODES.items() if wanted & set(modes)]
    files = sorted(set(listed) | set(unassigned_sources(package_dir)))
    return [package_dir / rel for rel in files if (package_dir / rel).is_file()]


def code_version(package_dir: str | Path = PACKAGE_DIR, mode: str | None = None) -> str:
    """sha256 over (relative path, content) of the preprocessor source files of `mode`."""
    package_dir = Path(package_dir)
    h = hashlib.sha256()
    for path in preprocessor_sources(package_dir, mode):
        h.update(str(path.relative_to(package_dir)).encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()


def sidecar_path(prefix: str | Path) -> Path:
    return Path(str(prefix) + ".json")


def read_sidecar(prefix: str | Path) -> dict[str, Any]:
    path = sidecar_path(prefix)
    if not path.is_file():
        raise MorphcptError(f"{path}: sidecar not found; rebuild the shard with the tokenize rule")
    try:
        return json.loads(path.read_text())
    except ValueError as exc:
        raise MorphcptError(f"{path}: sidecar is not valid JSON ({exc}); rebuild the shard") from None


# -- building a shard ----------------------------------------------------------------------------

Processor = Callable[[list[int], Any], "tuple[list[int], dict[str, Any]]"]


@dataclass
class ShardSpec:
    """What decides a shard's bytes, besides the chunk text and the code."""

    mode: str
    params: dict[str, Any]
    seed: int
    chunk: str  # "000": the chunk id as in the file names


@dataclass
class _Totals:
    documents: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    counters: dict[str, int] = field(default_factory=dict)
    bad_lines: dict[str, int] = field(default_factory=dict)

    def add_counters(self, counters: dict[str, Any]) -> None:
        """Sum the processor's integer counters; derived floats (a per-document ratio) do not add up."""
        for key, value in (counters or {}).items():
            if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
                self.counters[key] = self.counters.get(key, 0) + int(value)


# State of the worker processes: set in the parent, inherited by the fork (tokenizer and processor,
# split tables included, are built once).
_WORKER: dict[str, Any] = {}


def _process_batch(batch: list[tuple[int, str]]) -> list[tuple[int, "Any", int, dict[str, Any]]]:

    adapter, processor, rng_for, spec = _WORKER["adapter"], _WORKER["processor"], _WORKER["rng_for"], _WORKER["spec"]
    texts = [text for _, text in batch]
    encode_batch = getattr(adapter, "encode_batch", None)
    all_ids = encode_batch(texts) if encode_batch else [adapter.encode(t) for t in texts]
    out = []
    for (doc_index, _), ids in zip(batch, all_ids):
        new_ids, counters = processor(list(ids), rng_for(spec.seed, int(spec.chunk), doc_index))
        out.append((doc_index, np.asarray(new_ids, dtype=np.int64), len(ids), counters))
    return out


def _ordered_results(batches: Iterator[list[tuple[int, str]]], threads: int) -> Iterator[list]:
    """Results of _process_batch in input order. With threads > 1, a bounded window of batches is in
    flight in forked workers; the input is read here, in the caller's thread, so a bad line stops the
    stage at once with its own message."""
    if threads <= 1:
        yield from map(_process_batch, batches)
        return
    import collections
    import multiprocessing

    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # processes, not tokenizer threads, after a fork
    pool = multiprocessing.get_context("fork").Pool(threads)
    try:
        pending: collections.deque = collections.deque()
        for batch in batches:
            pending.append(pool.apply_async(_process_batch, (batch,)))
            if len(pending) >= 2 * threads:
                yield pending.popleft().get()
        while pending:
            yield pending.popleft().get()
    finally:
        pool.terminate()
        pool.join()


def _batches(items: Iterable[tuple[int, str]], size: int | None = None) -> Iterator[list[tuple[int, str]]]:
    size = size or _BATCH
    batch: list[tuple[int, str]] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def build_shard(chunk_path: str | Path, out_prefix: str | Path, adapter: Any, processor: Processor,
                spec: ShardSpec, rng_for: Callable[[int, int, int], Any], on_bad_line: str = "error",
                threads: int = 1, extra: dict[str, Any] | None = None, progress: bool = True) -> dict[str, Any]:
    """Write `out_prefix`.bin/.idx/.json from one chunk; return the sidecar.

    `adapter` has encode/vocab_size/bos_id/eos_id/fingerprint; `processor(ids, rng)` returns
    (ids, counters); `rng_for(seed, chunk, doc_index)` gives each document's generator, where
    doc_index is the document's 0-based line in the chunk (so it does not depend on bad lines
    before it, worker count or order).
    """
    from megatron.core.datasets.indexed_dataset import DType, IndexedDatasetBuilder
    from tqdm import tqdm

    check_on_bad_line(on_bad_line)
    chunk_path, out_prefix = Path(chunk_path), Path(out_prefix)
    if not chunk_path.is_file():
        raise MorphcptError(f"{chunk_path}: chunk file not found; rerun split_chunks")
    vocab_size, bos_id, eos_id = int(adapter.vocab_size), adapter.bos_id, adapter.eos_id
    if bos_id is None or eos_id is None:
        raise MorphcptError(f"tokenizer {adapter.fingerprint[:12]} has no bos or eos token; shards need both")
    for name, tid in (("bos", bos_id), ("eos", eos_id)):
        if not 0 <= tid < vocab_size:
            raise MorphcptError(f"tokenizer {name} id {tid} is outside its vocabulary (size {vocab_size})")
    dtype = DType.optimal_dtype(vocab_size)

    out_prefix.parent.mkdir(parents=True, exist_ok=True)
    for stale in out_prefix.parent.glob(f".{out_prefix.name}.tmp-*"):  # left by a killed job
        stale.unlink(missing_ok=True)
    tmp_prefix = out_prefix.with_name(f".{out_prefix.name}.tmp-{os.getpid()}")
    tmp_files = [Path(str(tmp_prefix) + s) for s in (".bin", ".idx", ".json")]
    final_files = [Path(str(out_prefix) + s) for s in (".bin", ".idx", ".json")]
    totals = _Totals()
    chunk_hash = hashlib.sha256()
    bar = tqdm(total=count_lines(chunk_path), desc=f"{spec.mode} chunk_{spec.chunk}", unit="doc",
               file=sys.stderr, mininterval=10.0, disable=not progress)

    def documents() -> Iterator[tuple[int, str]]:
        for line_no, text, kind in iter_chunk_documents(chunk_path, chunk_hash):
            if kind is not None:
                if on_bad_line == "error":
                    raise MorphcptError(bad_line_message(chunk_path, line_no, kind))
                totals.bad_lines[kind] = totals.bad_lines.get(kind, 0) + 1
                bar.update(1)
                continue
            yield line_no - 1, text

    _WORKER.clear()
    _WORKER.update(adapter=adapter, processor=processor, rng_for=rng_for, spec=spec)
    builder = None
    try:
        builder = IndexedDatasetBuilder(str(tmp_files[0]), dtype=dtype)
        for batch in _ordered_results(_batches(documents()), threads):
            for doc_index, ids, n_in, counters in batch:
                if ids.size and (ids.min() < 0 or ids.max() >= vocab_size):
                    bad = int(ids.max() if ids.max() >= vocab_size else ids.min())
                    raise MorphcptError(f"{chunk_path}:{doc_index + 1}: mode {spec.mode} produced id {bad} outside the "
                                        f"vocabulary (size {vocab_size}); this is a bug in the {spec.mode} processor")
                if ids.size == 0:
                    raise MorphcptError(f"{chunk_path}:{doc_index + 1}: mode {spec.mode} produced no ids for a "
                                        "non-empty document; this is a bug in the processor")
                if (ids == bos_id).any() or (ids == eos_id).any():  # would split the document for Megatron
                    raise MorphcptError(f"{chunk_path}:{doc_index + 1}: bos/eos id inside a document after "
                                        f"{spec.mode}; text is encoded without special tokens, so this is a bug")
                document = np.concatenate(([bos_id], ids, [eos_id])).astype(dtype)
                builder.add_document(document, [len(document)])
                totals.documents += 1
                totals.tokens_in += n_in
                totals.tokens_out += int(ids.size)
                totals.add_counters(counters)
            bar.update(len(batch))
        bar.close()
        if totals.documents == 0:
            raise MorphcptError(f"{chunk_path}: no valid documents in this chunk; a shard needs at least one")
        builder.finalize(str(tmp_files[1]))
        sidecar = {
            "version": SIDECAR_VERSION,
            "tokenizer_fingerprint": adapter.fingerprint,
            "vocab_size": vocab_size,
            "bos_id": int(bos_id),
            "eos_id": int(eos_id),
            "dtype": np.dtype(dtype).name,
            "mode": spec.mode,
            "params": dict(spec.params),
            "seed": spec.seed,
            "chunk": spec.chunk,
            "documents": totals.documents,
            "tokens_in": totals.tokens_in,
            "tokens_out": totals.tokens_out,
            "tokens_written": totals.tokens_out + 2 * totals.documents,  # with bos/eos: what the .bin holds
            "ratio": totals.tokens_out / totals.tokens_in if totals.tokens_in else 1.0,
            "counters": dict(sorted(totals.counters.items())),
            "code_version": code_version(mode=spec.mode),
            "bad_lines": dict(sorted(totals.bad_lines.items())),
            "on_bad_line": on_bad_line,
            "source_chunk": str(chunk_path),
            "workdir": os.getcwd(),  # relative paths above are relative to it (verify-shards runs anywhere)
            "chunk_sha256": chunk_hash.hexdigest(),
            **(extra or {}),
        }
        tmp_files[2].write_text(json.dumps(sidecar, indent=1) + "\n")
        for tmp, final in zip(tmp_files, final_files):  # sidecar last: its presence means complete
            tmp.replace(final)
        return sidecar
    finally:
        bar.close()
        _WORKER.clear()
        if builder is not None and not builder.data_file.closed:  # finalize closes it on success
            builder.data_file.close()
        for tmp in tmp_files:
            tmp.unlink(missing_ok=True)


def tokenize_chunk(chunk_path: str | Path, tokenizer_dir: str | Path, out_prefix: str | Path, mode: str,
                   modes: dict[str, Any], seed: int, chunk: str, on_bad_line: str = "error", threads: int = 1,
                   cache_dir: str | Path | None = None, progress: bool = True) -> dict[str, Any]:
    """The tokenize stage: load the tokenizer and the mode's processor, then `build_shard`."""
    if mode not in modes:
        raise MorphcptError(f"mode {mode!r} is not in the config's modes ({', '.join(modes) or 'none'}); "
                            "add it under modes: or drop it from the target")
    tokenizer_dir = Path(tokenizer_dir)
    if not tokenizer_dir.is_dir():
        raise MorphcptError(f"{tokenizer_dir}: tokenizer folder not found; run download_model for its family")
    from morphcpt.tokenization import TokenizerAdapter, document_rng, make_processor, resolve_params

    adapter = TokenizerAdapter.from_dir(tokenizer_dir)
    params = resolve_params(mode, modes[mode])  # as the processor uses them: defaults filled in
    processor = make_processor(adapter, mode, params, cache_dir=cache_dir)
    spec = ShardSpec(mode=mode, params=params, seed=int(seed), chunk=str(chunk))
    return build_shard(chunk_path, out_prefix, adapter, processor, spec, document_rng, on_bad_line=on_bad_line,
                       threads=threads, extra={"tokenizer_dir": str(tokenizer_dir)}, progress=progress)


def run_tokenize_stage(snakemake: Any) -> None:
    """Body of workflow/scripts/tokenize.py."""
    wc = snakemake.wildcards
    out_prefix = str(snakemake.output.bin)[: -len(".bin")]
    mode_params = snakemake.params.mode_params
    modes = {} if mode_params is None else {wc.mode: mode_params}
    sidecar = tokenize_chunk(
        snakemake.input.chunk, Path(snakemake.input.tokenizer).parent, out_prefix, wc.mode,
        modes, snakemake.params.seed, wc.chunk, on_bad_line=snakemake.params.on_bad_line,
        threads=int(snakemake.threads), cache_dir=snakemake.params.get("cache_dir"))
    print(f"wrote {out_prefix}.bin/.idx: {sidecar['documents']} documents, {sidecar['tokens_in']} canonical tokens "
          f"-> {sidecar['tokens_out']} ({sidecar['ratio']:.4f}), bad lines {sidecar['bad_lines'] or 'none'}")


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


def add_arguments(parser) -> None:
    parser.add_argument("prefixes", nargs="+", help="shard prefixes (path without .bin/.idx/.json)")
    parser.add_argument("--tokenizer-dir", default=None,
                        help="tokenizer folder for decoding (default: the one recorded in each sidecar)")
    parser.add_argument("--sample", type=int, default=64, help="documents per shard compared with vanilla (default 64)")


def run(args) -> int:
    for prefix in args.prefixes:
        prefix = prefix[: -len(".bin")] if prefix.endswith(".bin") else prefix
        s = verify_shard(prefix, tokenizer_dir=args.tokenizer_dir, sample=args.sample)
        extra = (f", ratio vs vanilla {s['ratio_vs_vanilla']:.4f}, {s['checked_against_vanilla']} documents decode equal"
                 if "ratio_vs_vanilla" in s else "")
        extra += (f", {s['checked_against_text']} documents match their chunk text" if s["checked_against_text"]
                  else ", chunk text not at hand (not compared)")
        print(f"ok {prefix}: {s['mode']}, {s['documents']} documents, {s['tokens_in']} -> {s['tokens_out']} tokens{extra}")
    return 0
