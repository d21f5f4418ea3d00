"""Each rule's resources from the config's `resources:` section (docs/design.md §10).

The rule files declare these (rules/common.smk), and preflight reads the same values to know
which NeMo rules will ask for GPUs before the DAG exists, so both go through here.
"""

from __future__ import annotations

from typing import Any


def rule_resources(config: dict[str, Any], rule: str) -> dict[str, Any]:
    """cpus_per_task / mem_mb / runtime (+ gpu) of a rule: its config entry over `default`, and
    nodes=1: the slurm executor emits --nodes only when a rule sets it, and without it Slurm may
    spread a job's GPUs over several nodes, where `torchrun --standalone` cannot reach them."""
    resources = config.get("resources", {})
    res = {**resources.get("default", {}), **resources.get(rule, {})}
    res.setdefault("cpus_per_task", 1)
    res.setdefault("mem_mb", 4000)
    res.setdefault("runtime", 60)
    res["nodes"] = 1
    return res


def gpu_resources(config: dict[str, Any], rule: str) -> dict[str, Any]:
    """Resources of a GPU rule (one GPU unless configured). tasks_per_gpu=0: otherwise the slurm
    executor adds --ntasks-per-gpu=1 and the job script runs once per GPU (docs/design.md §10)."""
    res = rule_resources(config, rule)
    res.setdefault("gpu", 1)
    res["tasks_per_gpu"] = 0
    return res
