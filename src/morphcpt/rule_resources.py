"""Each rule's resources from the config's `resources:` section (docs/design.md §10).

The rule files declare these (rules/common.smk), and preflight reads the same values to know
which NeMo rules will ask for GPUs before the DAG exists, so both go through here.
"""

from __future__ import annotations

from typing import Any


# Seconds between Slurm's SIGTERM to train and its time limit beyond `training.preemption_grace_s`:
# the driver's kill slack, the final prune and the requeue after the save (docs/design.md §6).
SIGNAL_MARGIN_S = 300
DEFAULT_GRACE_S = 600  # config/schema.yaml training.preemption_grace_s


def slurm_partition(config: dict[str, Any], gpus: int) -> str:
    """The config's partition for a job with `gpus` GPUs (config `slurm:`); "" when unset: the
    executor then uses the cluster's default partition (docs/design.md §10)."""
    slurm = config.get("slurm") or {}
    return slurm.get("gpu_partition" if gpus else "cpu_partition") or ""


def train_slurm_extra(config: dict[str, Any]) -> str:
    """train's own sbatch options: SIGTERM early enough before the time limit for the save on
    SIGTERM, and --requeue, so the job can requeue itself after that save (models/slurm_requeue.py)
    whatever the site profile sets."""
    grace = float((config.get("training") or {}).get("preemption_grace_s", DEFAULT_GRACE_S))
    return f"--signal=TERM@{int(-(-grace // 1)) + SIGNAL_MARGIN_S} --requeue"


def rule_resources(config: dict[str, Any], rule: str) -> dict[str, Any]:
    """cpus_per_task / mem_mb / runtime (+ gpu) of a rule: its config entry over `default`, and
    nodes=1: the slurm executor emits --nodes only when a rule sets it, and without it Slurm may
    spread a job's GPUs over several nodes, where `torchrun --standalone` cannot reach them.
    The site needs go with the rule too, so a minimal site profile suffices: the partition
    (config `slurm:`) and, for train, the SIGTERM before the time limit and --requeue (`slurm_extra`)."""
    resources = config.get("resources", {})
    res = {**resources.get("default", {}), **resources.get(rule, {})}
    res.setdefault("cpus_per_task", 1)
    res.setdefault("mem_mb", 4000)
    res.setdefault("runtime", 60)
    res["nodes"] = 1
    _set_partition(config, res)
    if rule == "train":
        res["slurm_extra"] = train_slurm_extra(config)
    return res


def _set_partition(config: dict[str, Any], res: dict[str, Any]) -> None:
    res.pop("slurm_partition", None)
    partition = slurm_partition(config, int(res.get("gpu", 0) or 0))
    if partition:
        res["slurm_partition"] = partition


def gpu_resources(config: dict[str, Any], rule: str) -> dict[str, Any]:
    """Resources of a GPU rule (one GPU unless configured). tasks_per_gpu=0: otherwise the slurm
    executor adds --ntasks-per-gpu=1 and the job script runs once per GPU (docs/design.md §10)."""
    res = rule_resources(config, rule)
    res.setdefault("gpu", 1)
    res["tasks_per_gpu"] = 0
    _set_partition(config, res)
    return res

