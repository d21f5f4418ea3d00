"""Building Megatron .bin/.idx shards per tokenizer x mode x chunk, with JSON sidecars (docs/design.md §5).

`build_shard` turns one JSONL chunk into one shard: canonical ids from the tokenizer, the mode's
processor over them (StochasTok/Patok ids are written as they are: never decoded to text and
re-tokenized), each document wrapped in the tokenizer's own bos/eos, written with megatron-core's
IndexedDatasetBuilder. Each document's randomness comes from document_rng(seed, chunk, line), so
any number of worker processes gives byte-identical files. Outputs are written under temporary
names and renamed only when complete; the sidecar is renamed last. A full disk removes them and
stops with one line (morphcpt.fileio.NoSpaceError).

Provenance lives here too: SOURCE_MODES says which source files decide which mode's shard bytes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from morphcpt.corpus import bad_line_message, check_on_bad_line, count_lines, iter_chunk_documents
from morphcpt.errors import MorphcptError
from morphcpt.fileio import removed_on_failure
from morphcpt.shards.memory import check_tokenize_memory

SIDECAR_VERSION = 1
PACKAGE_DIR = Path(__file__).resolve().parents[1]  # src/morphcpt
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
    "shards/__init__.py": ALL_MODES,
    "shards/build.py": ALL_MODES,
    "shards/memory.py": (),  # checks the job's memory before a shard is written; decides no byte of it
    "shards/verify.py": (),
    "shards/cli.py": (),
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
    "tokenization/lexicon_sources.py": (),  # builds root_lexicon.txt offline (scripts/build_patok_data.py)
    "tokenization/dev_gold.py": (),
}
# Sidecar keys other stages read (train checks the fingerprint); keep the names.
SIDECAR_KEYS = ("tokenizer_fingerprint", "vocab_size", "bos_id", "eos_id", "dtype", "mode", "params", "seed",
                "chunk", "documents", "tokens_in", "tokens_out", "ratio", "counters", "code_version", "bad_lines")
_BATCH = 256  # documents per work item handed to a worker process


# -- provenance --------------------------------------------------------------------------------

def _tokenization_files(package_dir: Path) -> list[str]:
    """Every source or data file of the tokenization and shards packages, as a path under `package_dir`."""
    return sorted(p.relative_to(package_dir).as_posix() for root in ("tokenization", "shards")
                  for p in (package_dir / root).rglob("*")
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

    def needed_bytes() -> int:
        """The shard's size extrapolated from the documents written when the disk filled up."""
        done = max(totals.documents + sum(totals.bad_lines.values()), 1)
        total = max(bar.total or done, done)
        written = (totals.tokens_out + 2 * totals.documents) * np.dtype(dtype).itemsize
        return int(written * total / done) + 16 * total + 4096  # .bin, .idx (12-16 bytes per document), sidecar

    # Out of disk space: every temporary (and renamed) file goes, and one line names the shard.
    with removed_on_failure([*tmp_files, *final_files], final_files[0], needed_bytes):
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
                with contextlib.suppress(OSError):  # a full disk fails the flush again; clean up anyway
                    builder.data_file.close()
            for tmp in tmp_files:
                tmp.unlink(missing_ok=True)


def tokenize_chunk(chunk_path: str | Path, tokenizer_dir: str | Path, out_prefix: str | Path, mode: str,
                   modes: dict[str, Any], seed: int, chunk: str, on_bad_line: str = "error", threads: int = 1,
                   cache_dir: str | Path | None = None, progress: bool = True,
                   mem_mb: float | None = None) -> dict[str, Any]:
    """The tokenize stage: check the chunk fits the job's `mem_mb` (shards.memory), load the
    tokenizer and the mode's processor, then `build_shard`."""
    if mode not in modes:
        raise MorphcptError(f"mode {mode!r} is not in the config's modes ({', '.join(modes) or 'none'}); "
                            "add it under modes: or drop it from the target")
    if Path(chunk_path).is_file():
        need = check_tokenize_memory(chunk_path, mem_mb, max(1, threads), _BATCH)
        print(f"memory: tokenizing {chunk_path} needs about {need} MB (declared mem_mb: {mem_mb or 'none'})")
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
        threads=int(snakemake.threads), cache_dir=snakemake.params.get("cache_dir"),
        mem_mb=getattr(snakemake.resources, "mem_mb", None))
    print(f"wrote {out_prefix}.bin/.idx: {sidecar['documents']} documents, {sidecar['tokens_in']} canonical tokens "
          f"-> {sidecar['tokens_out']} ({sidecar['ratio']:.4f}), bad lines {sidecar['bad_lines'] or 'none'}")
