"""Before any work, a job given GPUs checks that CUDA sees as many devices as it asked for
(docs/design.md §10). Without this, a NeMo job on a node whose driver is older than the image's
CUDA needs crashes inside TransformerEngine or runs its CPU code path on a GPU allocation.

`run_stage` (morphcpt.stage_io) calls `check_cuda_devices` for every job whose `gpu` resource is
above 0. MORPHCPT_GPUS_ARE_FAKE=1 turns the check into a log line: for the local Slurm test
cluster, whose GRES GPUs exist only as CUDA_VISIBLE_DEVICES (tests/slurm).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from morphcpt.errors import MorphcptError

FAKE_GPUS_ENV = "MORPHCPT_GPUS_ARE_FAKE"
# Oldest NVIDIA driver each CUDA major release runs on (CUDA's minor-version compatibility;
# NVIDIA's CUDA toolkit release notes, table "CUDA Toolkit and Minimum Required Driver Version").
MIN_DRIVER = {"12": "525.60.13", "13": "580.65.06"}


def node_driver() -> str:
    """The NVIDIA kernel driver loaded on this node, or why it is not known."""
    try:
        text = Path("/proc/driver/nvidia/version").read_text()
    except OSError:
        return "no NVIDIA driver loaded (/proc/driver/nvidia/version missing)"
    for word in text.split():
        if word.count(".") >= 1 and word.replace(".", "").isdigit():
            return f"NVIDIA driver {word}"
    return text.splitlines()[0] if text else "unknown"


def needed_driver(torch_cuda: str | None) -> str:
    if not torch_cuda:
        return ("a CUDA build of torch: this one is a CPU build (run the NeMo rules in the image of the config's "
                "`nemo_container`, evaluate in envs/eval.yaml)")
    major = torch_cuda.split(".")[0]
    least = MIN_DRIVER.get(major)
    return f"NVIDIA driver >= {least} for CUDA {torch_cuda}" if least else f"a driver for CUDA {torch_cuda}"


def check_cuda_devices(rule: str, requested: int) -> int:
    """The number of CUDA devices visible; MorphcptError when fewer than `requested`."""
    if requested <= 0:
        return 0
    import torch

    seen = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if seen >= requested:
        return seen
    where = (f"{rule} asked for {requested} GPU(s) but CUDA sees {seen} on node {socket.gethostname()} "
             f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}, {node_driver()}, "
             f"torch {torch.__version__} needs {needed_driver(torch.version.cuda)})")
    if os.environ.get(FAKE_GPUS_ENV) == "1":
        print(f"{where}; running on CPU because {FAKE_GPUS_ENV}=1", flush=True)
        return seen
    raise MorphcptError(f"{where}. Nothing was done. Run on a node whose driver the image supports "
                        f"(sbatch --exclude {socket.gethostname()}, or ask the site which partition has it)")
