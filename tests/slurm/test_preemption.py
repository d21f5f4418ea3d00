"""Preemption on the local Slurm cluster (issue 18.2): `scancel --signal=TERM` to a job whose step
runs the real launcher (morphcpt.models.launch) with real torchrun and two gloo ranks
(tests/models/sigterm_worker.py, a save of 35 s on one rank, longer than torchrun's default 30 s).
Slurm signals every process of the step (proctrack tracks torchrun's ranks in their own sessions
too); the ranks must get the configured grace and finish a complete checkpoint."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
MODEL_TESTS = REPO_ROOT / "tests" / "models"


def _wait(predicate, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}:\n" + (
            log.read_text()[-4000:] if log.is_file() else "(no job log)")
        time.sleep(0.1)


@pytest.mark.slurm
@pytest.mark.slow
def test_scancel_term_gives_the_workers_the_configured_grace(slurm_cluster, tmp_path):
    train_dir = tmp_path / "train"
    train_dir.mkdir()
    spec = {"train_dir": str(train_dir), "checkpoint_dir": str(train_dir / "checkpoints"), "gpus": 0, "cpu_ranks": 2,
            "threads": 2, "save_seconds": [1.0, 35.0], "training": {"max_steps": 100_000, "preemption_grace_s": 60}}
    spec_path, result, log = tmp_path / "spec.json", tmp_path / "result.json", tmp_path / "job.log"
    spec_path.write_text(json.dumps(spec))
    env = {**slurm_cluster.env, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT / "src"), str(MODEL_TESTS)])}
    step = f"srun -n1 {sys.executable} {MODEL_TESTS / 'sigterm_worker.py'} --driver {spec_path} {result}"
    job = subprocess.run(["sbatch", "--parsable", "-p", "cpu", "-n", "1", "-c", "2", "-t", "10", "-o", str(log),
                          "--wrap", step], env=env, capture_output=True, text=True, timeout=30)
    assert job.returncode == 0, job.stderr
    job_id = job.stdout.strip().split(";")[0]
    try:
        _wait(lambda: all((train_dir / f"progress-{r}").is_file() and int((train_dir / f"progress-{r}").read_text()
                                                                          or 0) >= 3 for r in (0, 1)),
              180, "both ranks to take 3 steps", log)
        sent = time.time()
        slurm_cluster.run("scancel", "--signal=TERM", job_id)
        _wait(result.is_file, 120, "the driver to end", log)
    finally:
        subprocess.run(["scancel", job_id], env=env, capture_output=True, timeout=30)
    out = json.loads(result.read_text())
    grace = out["ended"] - sent
    print(f"grace given after scancel --signal=TERM: {grace:.1f} s (configured 60 s, save 35 s)")
    assert out["error"] and "interrupted by signal 15" in out["error"], log.read_text()[-4000:]
    ckpts = sorted((train_dir / "checkpoints").iterdir())
    assert len(ckpts) == 1 and not ckpts[0].name.endswith("-unfinished"), ckpts
    assert int(ckpts[0].name.split("=")[1]) == int((train_dir / "progress-1").read_text()) >= 3
    assert sorted(p.name for p in ckpts[0].iterdir()) == ["rank0.pt", "rank1.pt"]
    assert 35 <= grace < 60
