"""The TF32 emulation of benchmarks/parity_error.py, whose figures calibrate the parity thresholds
(README, 'What a correct conversion can show'): if it rounded wrongly, the TF32 row would be
meaningless."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "parity_error.py"


def load_script():
    spec = importlib.util.spec_from_file_location("parity_error", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tf32_round_keeps_10_mantissa_bits_and_rounds_to_nearest_even():
    tf32_round = load_script().tf32_round
    ulp = 2.0 ** -10  # TF32's spacing at 1.0
    exact = torch.tensor([1.0, 1.0 + ulp, -3.5, 0.0, 2.0 ** -20 * (1 + ulp)], dtype=torch.float32)
    assert torch.equal(tf32_round(exact), exact)
    # Halfway cases go to the even neighbour; above halfway rounds up.
    half = torch.tensor([1.0 + ulp / 2, 1.0 + 3 * ulp / 2, 1.0 + ulp / 2 + 2.0 ** -20], dtype=torch.float32)
    assert tf32_round(half).tolist() == [1.0, 1.0 + 2 * ulp, 1.0 + ulp]
    x = torch.randn(10_000, generator=torch.Generator().manual_seed(0))
    rel = ((tf32_round(x) - x).abs() / x.abs()).max()
    assert 2.0 ** -12 < rel <= 2.0 ** -11  # half a TF32 ulp at most, and rounding did happen


def test_tf32_mode_rounds_linear_layers_only():
    module = load_script()
    gen = torch.Generator().manual_seed(0)
    x, w = torch.randn(4, 64, generator=gen), torch.randn(8, 64, generator=gen)
    with module.TF32Matmuls():
        linear = torch.nn.functional.linear(x, w)
        matmul = x @ w.t()
    assert torch.allclose(linear, torch.nn.functional.linear(module.tf32_round(x), module.tf32_round(w)), atol=0, rtol=0)
    assert not torch.equal(linear, torch.nn.functional.linear(x, w))
    assert torch.equal(matmul, x @ w.t())  # torch's own matmuls stay fp32 (strict_fp32 keeps them so)
