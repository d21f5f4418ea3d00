"""The tokenize stage's memory bound: what a chunk needs, from its longest texts, checked against
the job's declared `mem_mb` before any work (docs/design.md §5).

The tokenizer and the mode processors hold a whole document (and a whole batch of documents)
at once, so a job's peak grows with the largest batch of text it handles. Measured on
2026-12-02 (2-core VM, real Llama-3 tokenizer, one document of 0.01 / 2 / 8 MB, threads 1):
peak RSS 445 / 794 / 1809 MB in vanilla, 825 MB for 2 MB in StochasTok and Patok, i.e. about
450 MB plus 170-190 bytes per byte of text; a 1 MB Patok document peaked at 660-680 MB. The
bound below rounds both up (600 MB + 200 B/B); `python benchmarks/tokenize_memory.py` measures a
real Patok job against it (peak/bound 0.81-0.82 for 1 and 2 MB on 2026-12-02). With `threads` workers, the `threads` largest
batches may be in memory at once.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from pathlib import Path

from morphcpt.corpus import jsonl_lines
from morphcpt.errors import MorphcptError

BASE_MB = 600  # interpreter, tokenizer, megatron-core, the mode's tables
BYTES_PER_TEXT_BYTE = 200  # peak memory per byte of JSONL text in flight


@dataclass(order=True)
class _Batch:
    nbytes: int
    longest_bytes: int = 0
    longest_line: int = 0


@dataclass
class ChunkMemory:
    """The largest batches of a chunk (consecutive `batch_size` non-blank lines, as the shard writer
    batches documents) and the longest line in each."""

    batches: list[_Batch] = field(default_factory=list)

    def need_mb(self, threads: int = 1) -> int:
        top = self.batches[: max(1, threads)]
        return BASE_MB + math.ceil(BYTES_PER_TEXT_BYTE * sum(b.nbytes for b in top) / 1e6)


def scan_chunk(path: str | Path, batch_size: int, keep: int = 64) -> ChunkMemory:
    """One pass over a chunk's lines (no JSON parsing): the `keep` largest batches by bytes."""
    heap: list[_Batch] = []
    current = _Batch(0)
    count = 0

    def close(batch: _Batch) -> None:
        if batch.nbytes:
            (heapq.heappush if len(heap) < keep else heapq.heappushpop)(heap, batch)

    with open(path, "rb") as fh:
        for line_no, line in jsonl_lines(fh):
            current.nbytes += len(line)
            if len(line) > current.longest_bytes:
                current.longest_bytes, current.longest_line = len(line), line_no
            count += 1
            if count == batch_size:
                close(current)
                current, count = _Batch(0), 0
    close(current)
    return ChunkMemory(sorted(heap, reverse=True))


def check_tokenize_memory(chunk_path: str | Path, mem_mb: float | None, threads: int, batch_size: int) -> int:
    """The memory (MB) tokenizing this chunk needs; with `mem_mb` declared and too small, a
    MorphcptError naming the longest document's line, its size, the need and the fix."""
    memory = scan_chunk(chunk_path, batch_size)
    need = memory.need_mb(threads)
    if mem_mb and need > mem_mb and memory.batches:
        big = memory.batches[0]
        raise MorphcptError(
            f"{chunk_path}:{big.longest_line}: a document of {big.longest_bytes / 1e6:.1f} MB; tokenizing this chunk "
            f"with {threads} thread(s) needs about {need} MB, more than this job's mem_mb ({int(mem_mb)}). Raise "
            f"resources.tokenize.mem_mb to at least {need} in the config, or split that document into smaller records")
    return need
