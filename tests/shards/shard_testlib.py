"""Helpers for the corpus and shard tests (imported by module name: pytest puts this folder on sys.path): a byte-level stand-in tokenizer and processor (for the
mechanics of the shard writer, independent of the tokenization core), and small corpora."""

from __future__ import annotations

import json
import random
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
BAD_FIXTURES = {p.stem: p for p in sorted(FIXTURES.glob("*.jsonl"))}

SENTENCES = [
    "Kumain na ako ng almusal bago pumasok sa paaralan.",
    "Naglalaro ang mga bata sa plaza tuwing hapon.",
    "Magluluto si Nanay ng adobo mamayang gabi.",
    "Pinakamaganda ang tanawin mula sa tuktok ng bundok.",
    "Sumulat siya ng liham para sa kanyang lola sa probinsya.",
    "Bumili kami ng prutas at gulay sa palengke kahapon.",
    "Nag-aaral nang mabuti ang magkakapatid para sa pagsusulit.",
    "Tumatakbo ang aso sa bakuran habang umuulan.",
]


def write_jsonl(path: Path, texts: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for t in texts:
            fh.write(json.dumps({"text": t}, ensure_ascii=False) + "\n")
    return path


def small_corpus(n_docs: int = 40, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(SENTENCES) for _ in range(rng.randint(1, 4))) for _ in range(n_docs)]


class ByteAdapter:
    """Stand-in tokenizer: ids 0-255 are bytes, 256 bos, 257 eos; vocabulary of 260."""

    vocab_size = 260
    bos_id = 256
    eos_id = 257
    fingerprint = "byte-adapter-test"

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode_bytes(self, ids) -> bytes:
        return bytes(int(i) for i in ids if int(i) < 256)


def byte_rng(seed: int, chunk: int, doc_index: int) -> random.Random:
    return random.Random(f"{seed}/{chunk}/{doc_index}")


def duplicating_processor(ids: list[int], rng: random.Random):
    """Repeats one random id: uses the generator, keeps ids in the vocabulary."""
    pos = rng.randrange(len(ids))
    return ids[: pos + 1] + ids[pos:], {"attempts": 1, "successes": 1}
