"""Small fixture shards for the model tests, written directly with megatron-core's
IndexedDatasetBuilder plus a sidecar with the keys the shard stage writes (DESIGN §5)."""

from __future__ import annotations

import json
from pathlib import Path


def write_fixture_shard(prefix: Path, tokenizer_dir: Path, texts: list[str], mode: str = "vanilla",
                        chunk: str = "000", fingerprint: str | None = None) -> Path:
    """One shard: every text as bos + canonical ids + eos. Returns the prefix."""
    import numpy as np
    import torch
    from megatron.core.datasets.indexed_dataset import DType, IndexedDatasetBuilder

    from morphcpt.tokenization import TokenizerAdapter

    adapter = TokenizerAdapter.from_dir(tokenizer_dir)
    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    dtype = DType.optimal_dtype(adapter.vocab_size)
    builder = IndexedDatasetBuilder(str(prefix) + ".bin", dtype=dtype)
    tokens = 0
    for text in texts:
        ids = [adapter.bos_id] + list(adapter.encode(text)) + [adapter.eos_id]
        tokens += len(ids)
        builder.add_document(torch.tensor(ids), [len(ids)])
    builder.finalize(str(prefix) + ".idx")
    sidecar = {
        "tokenizer_fingerprint": fingerprint or adapter.fingerprint, "vocab_size": adapter.vocab_size,
        "bos_id": adapter.bos_id, "eos_id": adapter.eos_id, "dtype": np.dtype(dtype).name, "mode": mode,
        "params": {}, "seed": 0, "chunk": chunk, "documents": len(texts), "tokens_in": tokens, "tokens_out": tokens,
        "ratio": 1.0, "counters": {}, "code_version": "test-fixture", "bad_lines": {},
    }
    Path(str(prefix) + ".json").write_text(json.dumps(sidecar, indent=1))
    return prefix
