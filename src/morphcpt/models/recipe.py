"""The CPT recipe: what the config's `training:` section means (defaults, checks) and the NeMo 2.7
`llm.train` call built from it, run by each worker rank (`python -m morphcpt.models.train_worker`).

The worker restores the imported weights through AutoResume/RestoreConfig, or resumes from the
latest complete checkpoint of its own run (a preempted job continues where it stopped).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from morphcpt.errors import MorphcptError

TRAINING_DEFAULTS = {"weight_decay": 0.1, "adam_beta1": 0.9, "adam_beta2": 0.95, "adam_eps": 1e-5, "clip_grad": 1.0,
                     "precision": "bf16-mixed", "step0_loss_tolerance": 0.01, "attention": "causal",
                     "preemption_grace_s": 600}
REQUIRED_KEYS = ("seq_length", "global_batch_size", "micro_batch_size", "max_steps", "lr", "min_lr", "warmup_steps",
                 "checkpoint_every")


def training_config(training: dict[str, Any]) -> dict[str, Any]:
    from morphcpt.models.packed_data import ATTENTION_OBJECTIVES

    cfg = {**TRAINING_DEFAULTS, **training}
    missing = [k for k in REQUIRED_KEYS if k not in cfg]
    if missing:
        raise MorphcptError(f"config training: missing keys {missing}")
    if cfg["min_lr"] > cfg["lr"]:
        raise MorphcptError(f"config training: min_lr {cfg['min_lr']} > lr {cfg['lr']}")
    if cfg["warmup_steps"] >= cfg["max_steps"]:
        raise MorphcptError(f"config training: warmup_steps {cfg['warmup_steps']} must be < max_steps {cfg['max_steps']}")
    if cfg["attention"] not in ATTENTION_OBJECTIVES:
        raise MorphcptError(f"config training: attention {cfg['attention']!r} is not implemented end to end; "
                            f"use one of {sorted(ATTENTION_OBJECTIVES)}")
    return cfg


def train(spec: dict[str, Any]) -> None:
    """One `llm.train` run (every rank calls this)."""
    from morphcpt.models.nemo_io import nemo_setup

    nemo_setup()
    import torch
    from megatron.core.optimizer import OptimizerConfig
    from nemo import lightning as nl
    from nemo.collections import llm
    from nemo.lightning import io
    from nemo.lightning.pytorch.optim import CosineAnnealingScheduler

    from morphcpt.models.checkpoint_callbacks import FinalCheckpoint, SaveOnSigterm
    from morphcpt.models.checkpoints import checkpoint_callback, latest_checkpoint
    from morphcpt.models.launch import PREEMPTED_MARKER
    from morphcpt.models.packed_data import build_data_module, load_tokenizer
    from morphcpt.models.parallelism import apply_recompute, ddp_config
    from morphcpt.models.train_callback import MetricsCallback

    t = spec["training"]
    nemo_dir = Path(spec["nemo_dir"])
    tokenizer = load_tokenizer(nemo_dir)
    config = io.load_context(str(nemo_dir / "context"), subpath="model.config")
    config.seq_length = t["seq_length"]
    apply_recompute(config, spec["parallel_settings"])
    bf16 = str(t["precision"]).startswith("bf16")
    model = type(io.load_context(str(nemo_dir / "context"), subpath="model"))(config=config, tokenizer=tokenizer)
    data = build_data_module(spec, tokenizer)
    on_gpu = spec["gpus"] > 0
    strategy = nl.MegatronStrategy(
        tensor_model_parallel_size=spec["tensor"], pipeline_model_parallel_size=spec["pipeline"],
        ckpt_async_save=False,  # a checkpoint is complete before training goes on (preemption-safe)
        ddp=ddp_config(spec["parallel_settings"]),
    )
    trainer = nl.Trainer(
        accelerator="gpu" if on_gpu else "cpu", devices=spec["gpus"] if on_gpu else int(spec.get("cpu_ranks", 1)),
        num_nodes=int(spec.get("nodes", 1)),  # one torchrun agent per node (docs/design.md §6)
        strategy=strategy, max_steps=t["max_steps"], log_every_n_steps=1, limit_val_batches=0,
        num_sanity_val_steps=0, val_check_interval=t["max_steps"], enable_progress_bar=False,
        plugins=nl.MegatronMixedPrecision(precision=t["precision"]),
        callbacks=[MetricsCallback(spec), SaveOnSigterm(Path(spec["train_dir"]) / PREEMPTED_MARKER), FinalCheckpoint()],
    )
    optim = nl.MegatronOptimizerModule(
        config=OptimizerConfig(
            optimizer="adam", lr=t["lr"], min_lr=t["min_lr"], weight_decay=t["weight_decay"],
            adam_beta1=t["adam_beta1"], adam_beta2=t["adam_beta2"], adam_eps=t["adam_eps"],
            clip_grad=t["clip_grad"], bf16=bf16, fp16=False, params_dtype=torch.bfloat16 if bf16 else torch.float32,
            use_distributed_optimizer=spec["parallel_settings"]["distributed_optimizer"],
        ),
        # max_steps reaches the scheduler (the old pipeline's trap: without it, constant min LR
        # after 10 steps); constant_steps=0 gives the plain warmup + cosine.
        lr_scheduler=CosineAnnealingScheduler(max_steps=t["max_steps"], warmup_steps=t["warmup_steps"],
                                              constant_steps=0, min_lr=t["min_lr"]),
    )
    # NeMo's own logs in a subfolder: NeMoLogger moves whatever its log dir already holds into run_N/.
    logger = nl.NeMoLogger(explicit_log_dir=str(Path(spec["train_dir"]) / "nemo_logs"),
                           ckpt=checkpoint_callback(spec), tensorboard=None, wandb=None, update_logger_directory=False)
    # Resume from the latest complete checkpoint of this run (the driver removed unfinished ones),
    # else start from the imported weights. Named explicitly: without a `-last` copy NeMo's own
    # search (resume_if_exists) would find nothing.
    latest = latest_checkpoint(Path(spec["checkpoint_dir"]), t["global_batch_size"])
    if latest is not None:
        resume = nl.AutoResume(resume_from_path=str(latest[1]), resume_if_exists=False)
    else:
        resume = nl.AutoResume(restore_config=nl.RestoreConfig(path=str(nemo_dir), load_optim_state=False),
                               resume_if_exists=False, resume_ignore_no_checkpoint=True)
    llm.train(model=model, data=data, trainer=trainer, log=logger, resume=resume, optim=optim, tokenizer="data")
