"""The Slurm request of a train job by its family's node count (docs/design.md §6, §10).

One node (`parallelism.nodes: 1`, the default): `gpu=G` -> sbatch `--gpus=G --nodes=1`, one task,
and the Slurm executor runs the driver under `srun -n1` (as every other rule).

N nodes: `--nodes=N --ntasks=N --gres=gpu:G` (G GPUs on each node: `--gres` counts per node,
`--gpus` would count for the whole job), asked for through the executor's `mpi` resource: with
it, plugin 2.6.1 submits `--ntasks=tasks` and runs the job's script directly in the batch step,
on the allocation's first node, without `srun -n1` around it. The driver then starts one torchrun
agent per node itself (`morphcpt.models.launch.srun_command`), and stays out of the steps that
Slurm's warning signal reaches (see `launch.launch_worker`). The keys a request does not use
evaluate to None, which Snakemake drops, so a one-node job is submitted exactly as before.
"""

from __future__ import annotations

from typing import Any, Callable

# The train rule's resources that depend on the family's node count.
NODE_KEYS = ("nodes", "gpu", "gres", "mpi", "tasks")


def train_node_resources(config: dict[str, Any], family: str) -> dict[str, Any]:
    """nodes / gpu / gres / mpi / tasks of `family`'s train job (None: not set)."""
    par = config["families"][family].get("parallelism", {})
    nodes, gpus = int(par.get("nodes", 1)), int(par.get("gpus", 1))
    if nodes == 1:
        return {"nodes": 1, "gpu": gpus, "gres": None, "mpi": None, "tasks": None}
    return {"nodes": nodes, "gpu": None, "gres": f"gpu:{gpus}", "mpi": "srun", "tasks": nodes}


def node_resource(config: dict[str, Any], key: str) -> Callable[[Any], Any]:
    """The rule's resource `key` as a function of the job's wildcards (rules/train.smk)."""
    return lambda wildcards: train_node_resources(config, wildcards.family)[key]


def train_gpus(config: dict[str, Any], family: str) -> int:
    """GPUs of the whole train job (gpus per node x nodes), for plans and accounts."""
    par = config["families"][family].get("parallelism", {})
    return int(par.get("gpus", 1)) * int(par.get("nodes", 1))
