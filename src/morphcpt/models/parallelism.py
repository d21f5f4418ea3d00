"""The throughput settings of a family's `parallelism` config, as the train worker hands them to NeMo.

`families.<f>.parallelism` (config/schema.yaml) carries, besides tensor/pipeline/gpus: the
distributed optimizer, overlapped gradient reduce-scatter and parameter all-gather, fp32 gradient
reduction and activation recomputation. `train_settings` puts them into the train spec (plain
JSON); the worker turns them into Megatron's DistributedDataParallelConfig (through
`nl.MegatronStrategy(ddp=...)`), the optimizer's `use_distributed_optimizer` and the model
config's recompute fields. They apply on GPUs only: a CPU run (tests, demo) trains with all of
them off, as before, so CPU results do not depend on them. `morphcpt.memory_estimate` reads the
same keys for the plan.
"""

from __future__ import annotations

from typing import Any

# Schema defaults (config/schema.yaml); repeated here for specs built outside a validated config.
GPU_DEFAULTS = {"distributed_optimizer": True, "overlap_grad_reduce": True, "overlap_param_gather": True,
                "grad_reduce_in_fp32": True, "recompute": "none"}
CPU_SETTINGS = {"distributed_optimizer": False, "overlap_grad_reduce": False, "overlap_param_gather": False,
                "grad_reduce_in_fp32": False, "recompute": "none"}


def train_settings(parallelism: dict[str, Any], gpus: int) -> dict[str, Any]:
    """The settings a train spec carries: the family's on GPUs, all off on CPU."""
    if not gpus:
        return dict(CPU_SETTINGS)
    settings = {key: parallelism.get(key, default) for key, default in GPU_DEFAULTS.items()}
    if settings["overlap_param_gather"] and not settings["distributed_optimizer"]:
        settings["overlap_param_gather"] = False  # config validation refuses this; a hand-made spec gets it off
    return settings


def ddp_config(settings: dict[str, Any]):
    """Megatron's DistributedDataParallelConfig for `nl.MegatronStrategy(ddp=...)`."""
    from megatron.core.distributed import DistributedDataParallelConfig

    return DistributedDataParallelConfig(
        check_for_nan_in_grad=True,  # NeMo's default for ddp="megatron"
        grad_reduce_in_fp32=settings["grad_reduce_in_fp32"],
        overlap_grad_reduce=settings["overlap_grad_reduce"],
        overlap_param_gather=settings["overlap_param_gather"],
        use_distributed_optimizer=settings["distributed_optimizer"],
    )


def apply_recompute(model_config, settings: dict[str, Any]) -> None:
    """Full recomputation: every layer keeps only its input and is recomputed in the backward pass."""
    if settings["recompute"] == "full":
        model_config.recompute_granularity = "full"
        model_config.recompute_method = "uniform"
        model_config.recompute_num_layers = 1
    elif settings["recompute"] != "none":
        raise ValueError(f"parallelism.recompute {settings['recompute']!r}: expected none or full")
