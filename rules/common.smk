# Shared helpers of the rule files (resources from config, environments).
from morphcpt.estimates import out_mb as _out_mb

CPU_ENV = "../envs/cpu.yaml"
EVAL_ENV = "../envs/eval.yaml"  # CUDA torch: the evaluate rule runs on GPUs
# The NeMo rules run in the image when one is configured, and then in no conda env: with both
# deployment methods on, Snakemake would build envs/nemo.yaml (no TransformerEngine) inside the
# image and run there. Without an image they use envs/nemo.yaml (docs/design.md §11).
NEMO_CONTAINER = config["nemo_container"]
NEMO_ENV = None if NEMO_CONTAINER else "../envs/nemo.yaml"


def rule_resources(rule):
    """cpus_per_task / mem_mb / runtime (+ gpu) of a rule: its config entry over `default`."""
    res = {**config["resources"].get("default", {}), **config["resources"].get(rule, {})}
    res.setdefault("cpus_per_task", 1)
    res.setdefault("mem_mb", 4000)
    res.setdefault("runtime", 60)
    return res


def gpu_resources(rule):
    """Resources of a GPU rule. tasks_per_gpu=0: otherwise the slurm executor adds
    --ntasks-per-gpu=1 and the job script runs once per GPU (docs/design.md §10)."""
    res = rule_resources(rule)
    res.setdefault("gpu", 1)
    res["tasks_per_gpu"] = 0
    return res


def out_mb(rule):
    """The rule's expected output size in MB as a resource callable (see morphcpt.estimates)."""
    return lambda wildcards: _out_mb(config, rule, wildcards)
