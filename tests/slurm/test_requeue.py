"""Which failures are retried (docs/design.md §6): deterministic ones never, transient ones through
Slurm's requeue.

Snakemake retries every failure of a rule alike, so the rules whose failures are deterministic
(train's refusals, the parity gates) declare `retries: 0`, which beats the profile's `retries`.
A train job stopped before its time limit requeues itself (morphcpt.models.slurm_requeue): shown
on the local Slurm cluster with real batch jobs.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from morphcpt.models.slurm_requeue import requeue_this_job

REPO_ROOT = Path(__file__).resolve().parents[2]


def _snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    snakemake = Path(sys.executable).with_name("snakemake")
    return subprocess.run([str(snakemake), "--cores", "1", "--retries", "2", *args], cwd=workdir,
                          capture_output=True, text=True, timeout=300)


def test_rules_with_deterministic_failures_are_not_retried(tmp_path):
    """Snakemake 9 itself: a rule's `retries: 0` wins over the profile's retries (one attempt), a
    rule without it gets them (three attempts); and the workflow's train and gate rules declare it."""
    (tmp_path / "Snakefile").write_text(textwrap.dedent("""
        rule all:
            input: "refused.txt", "transient.txt"
        rule refused:
            output: "refused.txt"
            retries: 0
            shell: "echo attempt >> refused.attempts; exit 1"
        rule transient:
            output: "transient.txt"
            shell: "echo attempt >> transient.attempts; exit 1"
    """))
    result = _snakemake(tmp_path, "--keep-going")
    assert result.returncode != 0
    assert (tmp_path / "refused.attempts").read_text().count("attempt") == 1, result.stderr[-3000:]
    assert (tmp_path / "transient.attempts").read_text().count("attempt") == 3, result.stderr[-3000:]
    import re

    declared = {}
    for smk in (REPO_ROOT / "rules").glob("*.smk"):
        for rule, body in re.findall(r"^rule (\w+):\n((?:[ \t]+.*\n|\n)*)", smk.read_text(), flags=re.M):
            m = re.search(r"^\s+retries:\s*(\d+)", body, flags=re.M)
            if m:
                declared[rule] = int(m.group(1))
    assert declared == {"train": 0, "import_parity": 0, "export": 0}, declared


def test_requeue_is_only_for_a_slurm_job_that_saved(monkeypatch):
    assert requeue_this_job("train", True, env={}) is None  # not in Slurm: the local rerun resumes
    note = requeue_this_job("train", False, env={"SLURM_JOB_ID": "7"})
    assert "not requeued: no checkpoint beyond the one it started from" in note


def _wait_done(cluster, job_id: str, timeout: float = 240) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        (job,) = [j for j in cluster.jobs() if j["JobId"] == job_id]
        if job["JobState"] in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"):
            return job
        time.sleep(2)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s: {job}")


@pytest.mark.slurm
@pytest.mark.slow
def test_a_train_job_stopped_after_its_save_requeues_itself(slurm_cluster, tmp_path):
    """Real sbatch jobs running the driver's requeue step after a (simulated) save: a job the
    executor submitted for train (its comment) runs again as the same Slurm job and completes;
    a job of another rule, or one submitted without --requeue, is not requeued."""
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent(f"""
        import os, sys, time
        sys.path.insert(0, {str(REPO_ROOT / 'src')!r})
        from morphcpt.models.slurm_requeue import requeue_this_job
        log = open(sys.argv[1], "a")
        restart = os.environ.get("SLURM_RESTART_COUNT", "0")
        print("start", restart, flush=True, file=log)
        if restart == "0":
            print(requeue_this_job("train", progressed=True), flush=True, file=log)
            time.sleep(120)  # Slurm ends this run of the job when it requeues it
    """))

    def submit(name: str, *extra: str) -> tuple[str, Path]:
        log = tmp_path / f"{name}.log"
        out = slurm_cluster.run("sbatch", "--parsable", "-p", "cpu", "-t", "5", "-o", str(tmp_path / f"{name}.out"),
                                *extra, "--wrap", f"{sys.executable} {script} {log}")
        return out.strip().split(";")[0], log

    train_id, train_log = submit("train", "--requeue", "--comment=rule_train_wildcards_family=tiny,mode=patok")
    other_id, other_log = submit("other", "--requeue", "--comment=rule_evaluate_wildcards_x")
    fixed_id, fixed_log = submit("fixed", "--no-requeue", "--comment=rule_train_wildcards_x")
    job = _wait_done(slurm_cluster, train_id)
    lines = train_log.read_text().splitlines()
    assert job["JobState"] == "COMPLETED" and job["Restarts"] == "1", (job, lines)
    assert lines[0] == "start 0" and lines[1].startswith(f"requeued Slurm job {train_id}") and lines[2] == "start 1"
    for job_id, log, why in ((other_id, other_log, "not a job Snakemake submitted for rule train"),
                             (fixed_id, fixed_log, "submitted without --requeue")):
        slurm_cluster.run("scancel", job_id)
        job = _wait_done(slurm_cluster, job_id)
        lines = log.read_text().splitlines()
        assert lines[0] == "start 0" and why in lines[1] and len(lines) == 2, lines
        assert job["Restarts"] == "0", job
