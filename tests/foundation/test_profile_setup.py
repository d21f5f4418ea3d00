"""`morphcpt install-profile` makes `snakemake --profile slurm all_llama` work as written, from the
repository root, and never replaces or shadows a site's own `slurm` profile (issue 14)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# Only this repository's profile has these values (a site profile names a real account).
THIS_PROFILE_MARK = "slurm_account=CHANGE_ME_account"


@pytest.fixture()
def home(tmp_path, monkeypatch) -> dict[str, str]:
    """A temporary HOME and site config folder, for this process and for subprocesses."""
    env = {
        "HOME": str(tmp_path / "home"),
        "XDG_CONFIG_DIRS": str(tmp_path / "site"),
    }
    for key, value in env.items():
        Path(value).mkdir()
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    return {**os.environ, **env}


def install(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "morphcpt"), "install-profile", *args], env=env, capture_output=True, text=True, timeout=60
    )


def dry_run_as_typed(env: dict[str, str]) -> subprocess.CompletedProcess:
    """`snakemake --profile slurm all_llama`, dry run, from the repository root."""
    return subprocess.run(
        [str(BIN / "snakemake"), "--profile", "slurm", "all_llama", "-n"],
        cwd=REPO_ROOT,
        env={**env, "PATH": f"{BIN}:{env['PATH']}"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_without_setup_the_bare_name_does_not_resolve(home):
    result = dry_run_as_typed(home)
    assert result.returncode != 0
    assert "no profile.yaml (or config.yaml) found" in result.stderr


def test_setup_then_the_command_as_typed_uses_this_profile(home):
    first = install(home)
    assert first.returncode == 0, first.stderr
    link = Path(home["HOME"]) / ".config" / "snakemake" / "slurm"
    assert link.is_symlink() and link.resolve() == (REPO_ROOT / "profiles" / "slurm").resolve()
    assert "snakemake --profile slurm all_llama" in first.stdout

    again = install(home)  # idempotent
    assert again.returncode == 0, again.stderr
    assert "already linked" in again.stdout and link.resolve() == (REPO_ROOT / "profiles" / "slurm").resolve()

    result = dry_run_as_typed(home)
    assert result.returncode == 0, result.stderr[-3000:]
    assert THIS_PROFILE_MARK in result.stdout + result.stderr


def site_profile(folder: Path) -> Path:
    folder.mkdir(parents=True)
    config = folder / "config.yaml"
    config.write_text("executor: slurm\ndefault-resources:\n  slurm_account: site_account\n")
    return config


@pytest.mark.parametrize("where", ["user", "site"])
def test_an_existing_slurm_profile_is_left_untouched(home, where):
    folder = (Path(home["HOME"]) / ".config" / "snakemake" if where == "user" else Path(home["XDG_CONFIG_DIRS"]) / "snakemake") / "slurm"
    config = site_profile(folder)
    before = config.read_text()

    result = install(home)
    assert result.returncode != 0
    assert str(folder) in result.stderr and "--name morphcpt-slurm" in result.stderr
    assert config.read_text() == before and not folder.is_symlink()
    assert not (Path(home["HOME"]) / ".config" / "snakemake" / "slurm").is_symlink()

    # The documented alternative works beside the site profile.
    other = install(home, "--name", "morphcpt-slurm")
    assert other.returncode == 0, other.stderr
    assert (Path(home["HOME"]) / ".config" / "snakemake" / "morphcpt-slurm").resolve() == (REPO_ROOT / "profiles" / "slurm").resolve()
    assert config.read_text() == before


def test_a_link_to_another_checkout_is_not_replaced(home, tmp_path):
    elsewhere = tmp_path / "other-checkout" / "profiles" / "slurm"
    site_profile(elsewhere)
    link = Path(home["HOME"]) / ".config" / "snakemake" / "slurm"
    link.parent.mkdir(parents=True)
    link.symlink_to(elsewhere)

    result = install(home)
    assert result.returncode != 0 and f"a link to {elsewhere}" in result.stderr
    assert link.resolve() == elsewhere.resolve()
