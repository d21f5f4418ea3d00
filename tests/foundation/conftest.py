"""Fixtures shared by the foundation tests."""

from __future__ import annotations

import subprocess
import sys
from typing import Callable

import pytest
import yaml


@pytest.fixture
def plan_cli_with(repo_root, tmp_path) -> Callable[[Callable[[dict], None]], subprocess.CompletedProcess]:
    """`morphcpt plan all_llama --full` on config/config.yaml after `edit(config)`; asserts it exited 0."""

    def run(edit: Callable[[dict], None]) -> subprocess.CompletedProcess:
        config = yaml.safe_load((repo_root / "config" / "config.yaml").read_text())
        edit(config)
        configfile = tmp_path / "config.yaml"
        configfile.write_text(yaml.safe_dump(config))
        proc = subprocess.run([sys.executable, "-m", "morphcpt.cli", "plan", "all_llama", "--full", "--configfile",
                               str(configfile), "--directory", str(tmp_path)],
                              capture_output=True, text=True, timeout=120, cwd=repo_root)
        assert proc.returncode == 0, proc.stderr
        return proc

    return run
