"""More than one node through Slurm and torchrun (issue 19.2, docs/design.md §6), on the local Slurm
cluster: a train job of the tiny model with `nodes: 2` (one CPU rank per node, gloo) runs its driver
in the batch step, as the Slurm executor runs a multi-node train job, and the driver starts the
ranks through the production launch path: `srun --ntasks=2 --ntasks-per-node=1 ...` and one
torchrun agent per task with c10d rendezvous. Its loss curve equals the one-rank shared run's
(same recipe, same global batch) within the step-0 gate's tolerance.

The local cluster has ONE node: the job is a 2-task allocation on it, so srun (Slurm 22.05) warns
that it cannot honour --ntasks-per-node=1 and places both agents on that host; the rendezvous,
the two agents and the data-parallel split are the multi-node ones, the network between hosts is
not exercised. Kept in tests/models to reuse the session's tiny model and shared run; the cluster
fixture is tests/slurm's."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from model_fixtures import SRC, TESTS, TRAINING, _training_script, training_spec

_SLURM_CONFTEST = importlib.util.spec_from_file_location("slurm_cluster_fixture", TESTS.parent / "slurm" / "conftest.py")
_slurm = sys.modules.setdefault("slurm_cluster_fixture", importlib.util.module_from_spec(_SLURM_CONFTEST))
_SLURM_CONFTEST.loader.exec_module(_slurm)
slurm_cluster = _slurm.slurm_cluster  # the session's local cluster (started once, reused if running)

# What the Slurm executor's jobstep keeps of the allocation's SLURM_* variables when it runs a job
# (snakemake-executor-plugin-slurm-jobstep 0.6.1): the driver must not rely on the others.
KEPT_SLURM_VARS = ("SLURM_JOB_ID", "SLURM_JOBID", "SLURM_CLUSTER_NAME", "SLURM_SUBMIT_DIR", "SLURM_SUBMIT_HOST",
                   "SLURM_CONF")


@pytest.mark.slurm
@pytest.mark.slow
def test_two_task_train_job_matches_the_one_rank_run(slurm_cluster, training_run, imported_nemo, tiny_llama_hf,
                                                     fixture_shards, tmp_path):
    from morphcpt.models.train import read_metrics

    train_dir = tmp_path / "run"
    spec = training_spec(imported_nemo, tiny_llama_hf, fixture_shards, train_dir, nodes=2, threads=1)
    result, log = tmp_path / "result.json", tmp_path / "job.log"
    script = tmp_path / "driver.py"
    script.write_text("if __name__ == '__main__':\n    import os\n"
                      f"    for var in [v for v in os.environ if v.startswith('SLURM_') and v not in {KEPT_SLURM_VARS!r}]:\n"
                      "        del os.environ[var]\n"
                      + textwrap.indent(textwrap.dedent(_training_script(spec, result)), "    "))
    env = {**slurm_cluster.env, "PYTHONPATH": os.pathsep.join([str(SRC), str(TESTS)])}
    # The driver in the batch step, as for an `mpi` job (morphcpt.train_nodes); one CPU per task.
    job = subprocess.run(["sbatch", "--parsable", "-p", "cpu", "--nodes=1", "--ntasks=2", "--cpus-per-task=1",
                          "-t", "15", "-o", str(log), "--wrap", f"{sys.executable} {script}"],
                         env=env, capture_output=True, text=True, timeout=30)
    assert job.returncode == 0, job.stderr
    job_id = job.stdout.strip().split(";")[0]
    try:
        deadline = time.monotonic() + 600
        while not result.is_file():  # the driver writes it before the job ends
            state = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], env=env, capture_output=True,
                                   text=True, timeout=30).stdout.strip()
            if result.is_file():
                break
            assert state in ("PENDING", "CONFIGURING", "RUNNING") and time.monotonic() < deadline, (
                f"job {job_id} {state or 'gone'} without a result:\n" + (log.read_text()[-6000:] if log.is_file() else ""))
            time.sleep(1)
    finally:
        subprocess.run(["scancel", job_id], env=env, capture_output=True, timeout=30)
    out = json.loads(result.read_text())
    text = log.read_text()
    assert out["ok"], out["error"] + "\n" + text[-6000:]
    launch = next(line for line in text.splitlines() if line.startswith("train: launching "))
    assert launch.startswith("train: launching srun --ntasks=2 --ntasks-per-node=1 "), launch
    assert f"--nnodes=2 --nproc-per-node=1 --rdzv-backend=c10d --rdzv-endpoint=" in launch, launch
    assert f"--rdzv-id={job_id} " in launch and "--standalone" not in launch, launch
    assert "Starting with 2 processes" in text, text[-6000:]  # Lightning: one world of two ranks
    two = {m["step"]: m["loss"] for m in read_metrics(train_dir)}
    one = {m["step"]: m["loss"] for m in training_run["third"]["summary"]["steps"]}
    assert sorted(two) == sorted(one) == list(range(TRAINING["max_steps"]))
    tolerance = TRAINING["step0_loss_tolerance"]
    worst = max(abs(two[s] - one[s]) / abs(one[s]) for s in one)
    print(f"2 tasks (srun + torchrun c10d, one host) vs 1 rank: largest relative loss difference {worst:.2e} "
          f"over {len(one)} steps (tolerance {tolerance:g})")
    assert worst <= tolerance, {s: (one[s], two[s]) for s in one}
