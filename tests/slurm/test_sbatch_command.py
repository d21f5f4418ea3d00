"""The sbatch command of every job of the real config, built by the Slurm executor plugin's own
code (tests/slurm/sbatch_lines.py) from the workflow's DAG: each job asks for exactly one node
(issue 19.1), GPU jobs for their GPUs with no per-GPU tasks. No cluster needed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def sbatch_lines(repo_root) -> dict[str, str]:
    proc = subprocess.run([sys.executable, str(HERE / "sbatch_lines.py"), "config/config.yaml", "all"],
                          cwd=repo_root, capture_output=True, text=True, timeout=300)
    line = next((l for l in proc.stdout.splitlines() if l.startswith("SBATCH-LINES ")), None)
    assert proc.returncode == 0 and line, proc.stdout[-3000:] + proc.stderr[-5000:]
    return json.loads(line.split(" ", 1)[1])


def test_every_job_asks_for_exactly_one_node(sbatch_lines):
    assert {"download_model", "tokenize", "import_nemo", "train", "export", "evaluate"} <= set(sbatch_lines)
    for rule, call in sbatch_lines.items():
        assert call.split().count("--nodes=1") == 1, (rule, call)
        assert not [a for a in call.split() if a.startswith("--nodes=") and a != "--nodes=1"], (rule, call)


def test_gpu_jobs_get_one_task_not_one_per_gpu(sbatch_lines):
    for rule in ("import_parity", "train", "export", "evaluate"):
        assert "--ntasks-per-gpu" not in sbatch_lines[rule], (rule, sbatch_lines[rule])
