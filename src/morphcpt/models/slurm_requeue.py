"""Transient stops of a training job resume without a Snakemake retry: the job asks Slurm to
requeue itself.

The train rule declares `retries: 0`: Snakemake retries every failure alike, and a refusal
(changed config, failed gate, bad input) fails the same way every time, on Slurm after another
wait in the GPU queue. What is transient is handled by Slurm (the profile submits with
`--requeue`, `slurm-requeue: true`): preemption and node failure are requeued by Slurm itself and
the executor plugin (2.6.1) keeps waiting for the job (PREEMPTED, NODE_FAIL with requeue). The time
limit is not: Slurm's warning signal (`--signal=TERM@900`) makes the worker save a checkpoint, and
then the driver requeues its own job here (`scontrol requeue`), which restarts the same Slurm job
and resumes from that checkpoint; the plugin sees a job that is pending again, not a failure.

Only a job the Slurm executor submitted for the rule (its comment `rule_<rule>...`), still
RUNNING (a job cancelled with scancel is not) and that made progress since it started is requeued,
so an interactive allocation or a job that cannot save in time is never requeued in a loop.
"""

from __future__ import annotations

import os
import shutil
import subprocess


def _job_fields(job_id: str) -> dict[str, str]:
    out = subprocess.run(["scontrol", "show", "job", "--oneliner", job_id], capture_output=True, text=True,
                         timeout=60)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip() or f"scontrol show job {job_id} failed")
    fields: dict[str, str] = {}
    for token in out.stdout.split():
        key, sep, value = token.partition("=")
        if sep and key not in fields:
            fields[key] = value
    return fields


def requeue_this_job(rule: str, progressed: bool, env: dict[str, str] | None = None) -> str | None:
    """Requeue the Slurm batch job this process runs in, if it is one the executor submitted for
    `rule`. Returns a line for the log: what was done or why not; None outside a Slurm job."""
    env = os.environ if env is None else env
    job_id = env.get("SLURM_JOB_ID")
    if not job_id:
        return None
    if not progressed:
        return f"Slurm job {job_id} not requeued: no checkpoint beyond the one it started from"
    if not shutil.which("scontrol"):
        return f"Slurm job {job_id} not requeued: no scontrol on this node; rerun to resume"
    try:
        job = _job_fields(job_id)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        return f"Slurm job {job_id} not requeued: {exc}; rerun to resume"
    comment, state = job.get("Comment", ""), job.get("JobState", "")
    if not comment.startswith(f"rule_{rule}"):
        return f"Slurm job {job_id} not requeued: not a job Snakemake submitted for rule {rule} (comment {comment!r})"
    if state != "RUNNING":
        return f"Slurm job {job_id} not requeued: its state is {state} (cancelled, or Slurm requeues it itself)"
    if job.get("Requeue") == "0":
        return (f"Slurm job {job_id} not requeued: submitted without --requeue (profile: slurm-requeue: true); "
                "rerun to resume")
    out = subprocess.run(["scontrol", "requeue", job_id], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        return f"Slurm job {job_id} not requeued: scontrol requeue failed: {out.stderr.strip()}; rerun to resume"
    return f"requeued Slurm job {job_id}: it starts again and resumes from the checkpoint just saved"
