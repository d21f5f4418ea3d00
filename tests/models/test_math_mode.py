"""The parity gates compare in the math their reports claim (issue 19.6): `strict_fp32` closes
every TF32 path (NVIDIA_TF32_OVERRIDE=0 for cuBLAS/cuDNN/TransformerEngine, torch's switches) and
`math_mode` records what was in effect; a report says plain "float32" only when nothing was open."""

from __future__ import annotations

import pytest
import torch

from morphcpt.models.hf_reference import TF32_ENV, math_mode, strict_fp32
from morphcpt.models.nemo_io import compare_logits

THRESHOLDS = {"max_rel_diff": 1e-5, "min_top1_agreement": 1.0, "max_kl": 1e-8}


@pytest.fixture
def torch_switches(monkeypatch):
    """Restore torch's global TF32 switches and the variable after the test."""
    monkeypatch.setenv(TF32_ENV, "1")
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32,
             torch.get_float32_matmul_precision())
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved[:2]
    torch.set_float32_matmul_precision(saved[2])


def test_strict_fp32_closes_every_tf32_path(torch_switches, monkeypatch):
    monkeypatch.setenv(TF32_ENV, "0")  # as the parity adapters set it, before CUDA starts
    strict_fp32()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # judge it as on a GPU node
    mode = math_mode()
    assert mode["nvidia_tf32_override"] == "0" and mode["float32_matmul_precision"] == "highest"
    assert not mode["torch_matmul_allow_tf32"] and not mode["cudnn_allow_tf32"]
    assert mode["compared_in"] == "float32" and mode["device"] == "cuda"


def test_a_gpu_run_with_tf32_open_does_not_claim_float32(torch_switches, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    torch.backends.cuda.matmul.allow_tf32 = True
    mode = math_mode()
    assert mode["compared_in"].startswith("float32 with TF32 possible: ")
    assert "NVIDIA_TF32_OVERRIDE=0 not set" in mode["compared_in"]
    assert "torch matmul TF32 allowed" in mode["compared_in"]


def test_torch_switches_alone_do_not_claim_float32_on_a_gpu(torch_switches, monkeypatch):
    """TE's GEMMs go through cuBLAS, which torch's switches do not reach."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    strict_fp32()
    assert math_mode()["compared_in"] == "float32 with TF32 possible: NVIDIA_TF32_OVERRIDE=0 not set (cuBLAS/TransformerEngine GEMMs)"


def test_parity_reports_carry_the_math_mode(torch_switches, monkeypatch):
    monkeypatch.setenv(TF32_ENV, "0")
    strict_fp32()
    ref = torch.randn(2, 5, 11)
    report = compare_logits(ref, ref.clone(), THRESHOLDS, "test")
    assert report["passed"] and report["compared_in"] == "float32" and report["device"] == "cpu"
    assert report["nvidia_tf32_override"] == "0"
