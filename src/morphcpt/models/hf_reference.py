"""The HF model as the reference of every gate (import parity, step-0 loss, export parity).

One loader, so all gates compare against the same computation: fp32 weights (bf16-stored weights
are upcast after loading, exactly as NeMo's side is), TF32 off for torch, cuBLAS/cuDNN and
TransformerEngine (`strict_fp32`; the reports record `math_mode`), and eager attention.
Eager matters for Gemma 2: its attention-logit soft-capping exists only in the eager attention
function of transformers; `sdpa`/flash drop it, and a gate against them compares with another model.
"""

from __future__ import annotations

import os
from pathlib import Path

REFERENCE_ATTENTION = "eager"


# cuBLAS and cuDNN read this when they start; TransformerEngine's fp32 GEMMs go through cuBLAS
# and ignore torch's switches, so without it TE 2.12 computes "fp32" GEMMs in TF32.
TF32_ENV = "NVIDIA_TF32_OVERRIDE"


def strict_fp32() -> None:
    """fp32 matmuls in full fp32 (TF32 would round inputs to 10 mantissa bits on Ampere+ GPUs):
    torch's own switches here; NVIDIA_TF32_OVERRIDE=0 for cuBLAS/cuDNN (and so TE) must be in the
    environment before CUDA starts, so the parity adapters (workflow/scripts/import_parity.py,
    export.py) set it first thing. Not set here: the train driver also loads the reference, and
    its workers, which inherit its environment, may train with TF32."""
    import torch

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")


def math_mode() -> dict:
    """The fp32 math in effect, for the parity reports: `compared_in` is "float32" only when no
    TF32 path is open (always on CPU), else "float32 with TF32 possible" and the reason."""
    import torch

    mode = {"nvidia_tf32_override": os.environ.get(TF32_ENV),
            "torch_matmul_allow_tf32": bool(torch.backends.cuda.matmul.allow_tf32),
            "cudnn_allow_tf32": bool(torch.backends.cudnn.allow_tf32),
            "float32_matmul_precision": torch.get_float32_matmul_precision(),
            "device": "cuda" if torch.cuda.is_available() else "cpu"}
    open_paths = []
    if mode["device"] == "cuda":
        if mode["nvidia_tf32_override"] != "0":
            open_paths.append(f"{TF32_ENV}=0 not set (cuBLAS/TransformerEngine GEMMs)")
        if mode["torch_matmul_allow_tf32"] or mode["float32_matmul_precision"] != "highest":
            open_paths.append("torch matmul TF32 allowed")
        if mode["cudnn_allow_tf32"]:
            open_paths.append("cuDNN TF32 allowed")
    mode["compared_in"] = "float32" if not open_paths else "float32 with TF32 possible: " + "; ".join(open_paths)
    return mode


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
