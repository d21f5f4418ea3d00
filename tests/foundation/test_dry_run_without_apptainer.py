"""Dry runs for planning need only the Python environment (issue 19.3): `morphcpt plan` works on
a machine without apptainer or singularity on PATH, and so does `snakemake --profile profiles/slurm -n`:
the NeMo rules start the image themselves (morphcpt.container), Snakemake's own container deployment
(which looks for the command even in a dry run) is not used (docs/design.md §11)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture
def path_without_apptainer() -> str:
    path = os.pathsep.join([str(Path(sys.executable).parent), "/usr/bin", "/bin"])
    if shutil.which("apptainer", path=path) or shutil.which("singularity", path=path):
        pytest.skip("apptainer or singularity is installed in /usr/bin or /bin here")
    return path


def test_plan_needs_no_apptainer(repo_root, tmp_path, path_without_apptainer):
    proc = subprocess.run([sys.executable, "-m", "morphcpt.cli", "plan", "all_llama", "--full", "--directory",
                           str(tmp_path)], cwd=repo_root, capture_output=True, text=True, timeout=180,
                          env={**os.environ, "PATH": path_without_apptainer})
    assert "apptainer or singularity command has to be available" not in proc.stderr
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("plan for target all_llama")


def test_slurm_profile_dry_run_needs_no_apptainer(repo_root, path_without_apptainer):
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--profile", "profiles/slurm", "-n", "--forceall",
                           "models_llama"], cwd=repo_root, capture_output=True, text=True, timeout=180,
                          env={**os.environ, "PATH": path_without_apptainer})
    assert "apptainer or singularity command has to be available" not in proc.stderr
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "rule import_nemo:" in proc.stdout + proc.stderr and "rule train:" not in proc.stdout + proc.stderr
