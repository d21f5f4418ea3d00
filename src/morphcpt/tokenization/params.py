"""Tokenization modes, their parameters and defaults, and the per-document random Generator.

Shared by every mode: an edit here reruns every mode's shards (shards.SOURCE_MODES).
"""

from __future__ import annotations

import math

import numpy as np

from morphcpt.errors import MorphcptError

MODES = ("vanilla", "stochastok", "patok")
DEFAULT_PARAMS: dict[str, dict[str, float]] = {
    "vanilla": {},
    "stochastok": {"expand_prop": 0.1},
    "patok": {"cut_prop": 0.8, "expand_prop": 0.1},
}


def document_rng(seed: int, chunk: int, doc_index: int) -> np.random.Generator:
    """The Generator for one document: a function of (global seed, chunk, document index) only."""
    values = (seed, chunk, doc_index)
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 0 for v in values):
        raise MorphcptError(f"document_rng needs non-negative integers (seed, chunk, doc_index), got {values!r}")
    return np.random.default_rng(np.random.SeedSequence([int(v) for v in values]))


def resolve_params(mode: str, params: dict | None) -> dict[str, float]:
    """Mode params with docs/design.md §1 defaults filled in; unknown keys and values outside [0, 1] fail."""
    if mode not in DEFAULT_PARAMS:
        raise MorphcptError(f"unknown tokenization mode {mode!r}; use one of {', '.join(MODES)}")
    given = dict(params or {})
    unknown = sorted(set(given) - set(DEFAULT_PARAMS[mode]))
    if unknown:
        allowed = ", ".join(DEFAULT_PARAMS[mode]) or "none"
        raise MorphcptError(f"mode {mode}: unknown parameter(s) {', '.join(unknown)} (allowed: {allowed})")
    resolved = dict(DEFAULT_PARAMS[mode])
    for key, value in given.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0 or math.isnan(value):
            raise MorphcptError(f"mode {mode}: parameter {key}={value!r} must be a number in [0, 1]")
        resolved[key] = float(value)
    return resolved


def counters(n_in: int, n_out: int, **extra) -> dict:
    counters = {"tokens_in": n_in, "tokens_out": n_out, "attempts": 0, "splits": 0, "affix_splits": 0, "affix_preserved": 0}
    counters.update(extra)
    counters["ratio"] = n_out / n_in if n_in else 1.0
    return counters
