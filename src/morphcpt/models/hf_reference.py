"""The HF model as the reference of every gate (import parity, step-0 loss, export parity).

One loader, so all gates compare against the same computation: fp32 weights (bf16-stored weights
are upcast after loading, exactly as NeMo's side is), TF32 matmuls off, and eager attention.
Eager matters for Gemma 2: its attention-logit soft-capping exists only in the eager attention
function of transformers; `sdpa`/flash drop it, and a gate against them compares with another model.
"""

from __future__ import annotations

from pathlib import Path

REFERENCE_ATTENTION = "eager"


def strict_fp32() -> None:
    """fp32 matmuls in full fp32 (TF32 would round inputs to 10 mantissa bits on Ampere+ GPUs)."""
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def reference_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_hf_reference(hf_dir: Path, **config_overrides):
    """The HF causal LM in `hf_dir`, fp32, eager attention, eval mode, on the reference device.
    `config_overrides` replace config.json values (tests: e.g. dropping Gemma's soft-capping)."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    strict_fp32()
    config = AutoConfig.from_pretrained(str(hf_dir))
    for key, value in config_overrides.items():
        setattr(config, key, value)
    model = AutoModelForCausalLM.from_pretrained(str(hf_dir), config=config, torch_dtype=torch.float32,
                                                 attn_implementation=REFERENCE_ATTENTION)
    return model.to(reference_device()).eval()


def free_cuda_cache() -> None:
    """Give cached GPU memory back after the caller dropped its last reference to the model (the
    training driver holds no GPU memory while its workers train)."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
