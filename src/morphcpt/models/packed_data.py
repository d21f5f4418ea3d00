"""The training data as NeMo packs it: every chunk of one (tokenizer, mode) in seq_length samples,
documents separated by the tokenizer's eos (the data module's eod), no loss on eod.

Shared by the worker (the recipe) and the driver (the step-0 reference needs the exact samples of
step 0), so both build the data module with the same arguments.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from morphcpt.errors import MorphcptError

# training.attention -> what the data module asks of the attention. "causal": one causal mask over
# the whole packed sample (documents see earlier documents of the sample, separated by eod), with
# positions running 0..seq_length-1: what TransformerEngine's fused causal kernels compute.
ATTENTION_OBJECTIVES = {
    "causal": {"reset_position_ids": False, "reset_attention_mask": False},
}


def nemo_tokenizer_dir(nemo_dir: Path) -> Path:
    d = Path(nemo_dir) / "context" / "nemo_tokenizer"
    if not d.is_dir():
        raise MorphcptError(f"{nemo_dir}: no context/nemo_tokenizer; rerun import_nemo")
    return d


def load_tokenizer(nemo_dir: Path):
    from nemo.collections.common.tokenizers.huggingface.auto_tokenizer import AutoTokenizer

    return AutoTokenizer(str(nemo_tokenizer_dir(nemo_dir)))


def blend(prefixes: list[str]) -> list[str]:
    """The data module's `paths`: each chunk weighted by its size ([w1, p1, w2, p2, ...]).

    Weights matter beyond the mix: given several prefixes and no weights, megatron-core builds one
    epoch of each chunk (BlendedMegatronDatasetBuilder: `sizes_per_dataset` None), so a run longer
    than the data runs out of samples and Lightning starts a new epoch whose sampler restarts at the
    consumed_samples the job started with: 0 in an uninterrupted run, the resume point after a
    resume, so the two see different samples after the wrap. With weights each chunk is built for
    the samples the run needs (reshuffled every epoch) and one epoch of the loader covers max_steps.
    The .bin size stands for the token count (one mode's chunks share the tokenizer's dtype)."""
    paths: list[str] = []
    for prefix in prefixes:
        size = Path(prefix + ".bin").stat().st_size
        if size == 0:
            raise MorphcptError(f"{prefix}.bin: empty shard; rerun tokenize")
        paths += [str(size), prefix]
    return paths


def check_samples(train_ds, spec: dict[str, Any]) -> None:
    """The training dataset holds a sample for every step (no wrap inside the loader)."""
    need = spec["training"]["max_steps"] * spec["training"]["global_batch_size"]
    if len(train_ds) < need:
        raise MorphcptError(f"the training dataset of {spec['shard_prefixes'][0]}... has {len(train_ds)} samples, "
                            f"fewer than max_steps x global_batch_size = {need}")


def build_data_module(spec: dict[str, Any], tokenizer):
    """PreTrainingDataModule over every chunk of the (tokenizer, mode), packed for the declared
    training.attention objective, no loss on eod."""
    from nemo.collections import llm

    t = spec["training"]
    objective = ATTENTION_OBJECTIVES[t["attention"]]
    on_gpu = spec["gpus"] > 0
    return llm.PreTrainingDataModule(
        paths=blend(spec["shard_prefixes"]), seq_length=t["seq_length"], tokenizer=tokenizer,
        micro_batch_size=t["micro_batch_size"], global_batch_size=t["global_batch_size"],
        num_workers=2 if on_gpu else 0, pin_memory=on_gpu, persistent_workers=False,
        create_attention_mask=True, eod_mask_loss=True, **objective,
        seed=spec["seed"], split="100,0,0", index_mapping_dir=str(Path(spec["train_dir"]) / "index_cache"),
    )


def build_data_for_reference(spec: dict[str, Any], tokenizer):
    """The data module as the trainer builds it (same arguments), with its datasets built."""
    data = build_data_module(spec, tokenizer)
    data.build(trainer_max_steps=spec["training"]["max_steps"], trainer_val_check_interval=spec["training"]["max_steps"],
               trainer_limit_val_batches=0, trainer_limit_test_batches=0)
    check_samples(data._train_ds, spec)
    return data


def first_global_batch(train_ds, global_batch_size: int) -> list[dict[str, Any]]:
    """Samples 0..gbs-1: what MegatronPretrainingSampler hands out at step 0 (consumed_samples=0)."""
    return [train_ds[i] for i in range(global_batch_size)]


def batch_digest(samples: list[dict[str, Any]]) -> str:
    import numpy as np

    h = hashlib.sha256()
    for s in samples:
        for key in ("tokens", "labels", "loss_mask", "position_ids"):
            h.update(np.asarray(s[key]).astype(np.float64).tobytes())
    return h.hexdigest()
