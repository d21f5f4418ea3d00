"""Megatron shards per tokenizer x mode x chunk (docs/design.md §5), one concept per module:
`build` (the tokenize stage: chunk -> .bin/.idx + sidecar, and which source files decide the
bytes), `verify` (a shard read back and checked), `cli` (`morphcpt verify-shards`).
"""

from morphcpt.shards.build import (ALL_MODES, SIDECAR_KEYS, SOURCE_MODES, ShardSpec, build_shard, code_version,
                                   preprocessor_sources, read_sidecar, run_tokenize_stage, sidecar_path,
                                   tokenize_chunk, unassigned_sources)
from morphcpt.shards.verify import check_index_file, verify_shard

__all__ = ["ALL_MODES", "SIDECAR_KEYS", "SOURCE_MODES", "ShardSpec", "build_shard", "check_index_file", "code_version",
           "preprocessor_sources", "read_sidecar", "run_tokenize_stage", "sidecar_path", "tokenize_chunk",
           "unassigned_sources", "verify_shard"]
