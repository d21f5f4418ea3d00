"""The three tokenization modes as processors: canonical ids + a seeded Generator -> ids + counters.

One module per mode's algorithm, so that an edit reruns only the shards of the modes that use it
(shards.SOURCE_MODES): parameters and the per-document Generator in params.py (every mode),
StochasTok's expander in stochastok.py (StochasTok and Patok), Patok in patok.py (Patok only).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from morphcpt.tokenization.adapter import TokenizerAdapter
from morphcpt.tokenization.params import DEFAULT_PARAMS, MODES, counters, document_rng, resolve_params
from morphcpt.tokenization.patok import PatokProcessor
from morphcpt.tokenization.split_table import split_table_for
from morphcpt.tokenization.stochastok import StochasTokProcessor

__all__ = ["DEFAULT_PARAMS", "MODES", "document_rng", "resolve_params", "make_processor",
           "VanillaProcessor", "StochasTokProcessor", "PatokProcessor"]


class VanillaProcessor:
    mode = "vanilla"

    def __init__(self, adapter: TokenizerAdapter, params: dict):
        self.adapter, self.params = adapter, params

    def __call__(self, ids: list[int], rng: np.random.Generator) -> tuple[list[int], dict]:
        out = list(ids)
        return out, counters(len(ids), len(out))


def default_cache_dir() -> Path:
    from morphcpt.assets import cache_dir

    return cache_dir() / "split_tables"


def make_processor(adapter: TokenizerAdapter, mode: str, params: dict | None = None, cache_dir: Path | None = None):
    """A callable `proc(ids, rng) -> (ids, counters)` for a mode; params default to docs/design.md §1's.

    The split table is cached under cache_dir (default: assets.cache_dir()/split_tables)."""
    resolved = resolve_params(mode, params)
    if mode == "vanilla":
        return VanillaProcessor(adapter, resolved)
    table = split_table_for(adapter, Path(cache_dir) if cache_dir is not None else default_cache_dir())
    if mode == "stochastok":
        return StochasTokProcessor(adapter, resolved, table)
    return PatokProcessor(adapter, resolved, table)
