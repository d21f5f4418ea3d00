"""What a train job on several nodes asks Slurm for (issue 19.2, docs/design.md §6): the sbatch line
built by the Slurm executor plugin's own `get_submit_command` + `set_gres_string` from the jobs of the
workflow's DAG (`morphcpt.plan.dry_run_jobs`), for the real config with `parallelism.nodes: 2`; and
the srun / torchrun argv the driver runs in that allocation. No cluster needed."""

from __future__ import annotations

import sys

import pytest
import yaml

from morphcpt.models.launch import srun_command, worker_command
from morphcpt.plan import dry_run_jobs

PARAMS = dict(run_uuid="UUID", slurm_logfile="LOG", comment_str="COMMENT", account="-A ACCOUNT",
              partition="-p PARTITION", workdir="WORKDIR")


@pytest.fixture(scope="module")
def train_jobs(repo_root, tmp_path_factory) -> dict[str, object]:
    """family -> its first train job, with llama31_8b on 2 nodes of 8 GPUs and gemma2_2b on one."""
    folder = tmp_path_factory.mktemp("multinode")
    config = yaml.safe_load((repo_root / "config" / "config.yaml").read_text())
    config["families"]["llama31_8b"]["parallelism"]["nodes"] = 2
    (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    jobs = dry_run_jobs("all", folder / "config.yaml", full=True, workdir=folder)
    found: dict[str, object] = {}
    for job in jobs:
        if job.rule.name == "train":
            found.setdefault(job.wildcards.family, job)
    return found


def sbatch_line(job) -> str:
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    return get_submit_command(job, PARAMS) + set_gres_string(job)  # as the plugin's submit() builds it


def test_two_nodes_ask_for_two_nodes_one_task_each_and_8_gpus_per_node(train_jobs):
    args = sbatch_line(train_jobs["llama31_8b"]).split()
    assert args.count("--nodes=2") == 1 and args.count("--ntasks=2") == 1, args
    assert args.count("--gres=gpu:8") == 1, args  # --gres counts per node
    assert not [a for a in args if a.startswith(("--gpus", "--ntasks-per-gpu", "--nodes=1"))], args
    # the jobstep runs an `mpi` job's script in the batch step (first node), without `srun -n1`
    assert "mpi" in train_jobs["llama31_8b"].resources.keys()


def test_one_node_request_is_unchanged(train_jobs):
    job = train_jobs["gemma2_2b"]
    args = sbatch_line(job).split()
    assert args.count("--nodes=1") == 1 and args.count("--gpus=8") == 1, args
    assert not [a for a in args if a.startswith(("--gres", "--ntasks"))], args
    assert not {"mpi", "gres", "tasks"} & set(job.resources.keys())


def test_srun_starts_one_torchrun_agent_per_node_with_c10d_rendezvous(tmp_path):
    spec = tmp_path / "train_spec.json"
    srun = srun_command(2, cpus_per_task=64, gpus_per_node=8, grace_s=600)
    assert srun == ["srun", "--ntasks=2", "--ntasks-per-node=1", "--kill-on-bad-exit=0", "--wait=610",
                    "--cpus-per-task=64", "--gres=gpu:8"]
    agent = worker_command(spec, 8, nodes=2, rendezvous={"endpoint": "node001:29411", "id": "4242"})
    assert agent == [sys.executable, "-m", "torch.distributed.run", "--nnodes=2", "--nproc-per-node=8",
                     "--rdzv-backend=c10d", "--rdzv-endpoint=node001:29411", "--rdzv-id=4242",
                     "-m", "morphcpt.models.train_worker", str(spec)]
    assert "--standalone" not in agent
    assert "--standalone" in worker_command(spec, 8, torchrun=True)  # one node: as before
    assert srun_command(2, cpus_per_task=2, gpus_per_node=0, grace_s=5)[-1] == "--cpus-per-task=2"  # CPU: no gres


def test_rendezvous_is_this_host_under_the_slurm_job_id_and_needs_an_allocation():
    import socket

    from morphcpt.errors import MorphcptError
    from morphcpt.models.launch import rendezvous_here

    here = rendezvous_here({"SLURM_JOB_ID": "4242"})
    host, port = here["endpoint"].rsplit(":", 1)
    assert here["id"] == "4242" and host == socket.gethostname() and int(port) > 0
    with pytest.raises(MorphcptError, match="only inside a Slurm allocation"):
        rendezvous_here({})
