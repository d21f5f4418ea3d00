"""scripts/gpu_check.sh: its CPU smoke run (the same glue as on a GPU, tiny fp32 model) passes every
gate and writes the figures JSON; its throughput arithmetic checked by hand."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _gpu_check_run():
    spec = importlib.util.spec_from_file_location("gpu_check_run", REPO / "scripts" / "gpu_check_run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_param_count_flops_and_mfu_by_hand():
    run = _gpu_check_run()
    params = run.model_params(run.GPU_MODEL, 128_256)
    # embeddings and head 2 × 128,256 × 2048; per layer q/o 2 × 2048², k/v 2 × 2048 × 512,
    # MLP 3 × 2048 × 8192, 2 norms; 12 layers; final norm
    per_layer = 2 * 2048 * 2048 + 2 * 2048 * 512 + 3 * 2048 * 8192 + 2 * 2048
    assert params["total"] == 2 * 128_256 * 2048 + 12 * per_layer + 2048 == 1_255_196_672
    flops = run.flops_per_token(params, run.GPU_MODEL, 2048)
    assert flops == 6 * (1_255_196_672 - 128_256 * 2048) + 12 * 12 * 2048 * 2048
    # 10,000 tokens/s/GPU at 6.56 GFLOP/token is 6.6% of 989 TFLOP/s
    assert run.mfu(10_000, flops) == pytest.approx(10_000 * flops / 989e12)
    assert 0.06 < run.mfu(10_000, flops) < 0.07


@pytest.mark.slow
def test_cpu_smoke_run_passes_every_gate_and_writes_the_figures(tmp_path):
    out = tmp_path / "out"
    env = dict(os.environ, GPU_CHECK_OUT=str(out), CPU_SMOKE="1", PYTHON=sys.executable)
    with open(tmp_path / "log.txt", "w+") as log:  # a file, not a pipe: checkpoint writers may outlive the run
        proc = subprocess.run(["bash", str(REPO / "scripts" / "gpu_check.sh")], env=env, stdout=log,
                              stderr=subprocess.STDOUT, timeout=1500, cwd=tmp_path)
        log.seek(0)
        output = log.read()
    assert proc.returncode == 0, output[-6000:]
    for line in ("GATE import_parity: PASS", "GATE step0_gate: PASS", "GATE export_parity: PASS", "tokens/s/GPU"):
        assert line in output, output[-6000:]
    result = json.loads((out / "gpu_check.json").read_text())
    assert result["mode"] == "cpu_smoke" and result["gpu_figures"] is False
    assert result["passed"] and result["gates"] == {"import_parity": True, "step0_gate": True, "export_parity": True}
    # the JSON's parameter count is the model's that was written
    from safetensors import safe_open

    with safe_open(str(out / "hf" / "model.safetensors"), "pt") as f:
        written = sum(f.get_slice(k).get_shape().numel() if hasattr(f.get_slice(k).get_shape(), "numel")
                      else _numel(f.get_slice(k).get_shape()) for k in f.keys())
    assert result["model"]["params"] == written
    training = result["training"]
    assert training["steps"] == 10 and training["tokens_per_s_per_gpu_median"] > 0
    assert 0 < training["mfu"] < 1 and training["mfu_peak_tflops"] == 989
    assert training["spec"]["parallel_settings"]["distributed_optimizer"] is False  # CPU: all off
    for gate in ("import_parity", "step0_gate", "export_parity"):  # each gate's own report, with its figures
        assert result[gate]["passed"] is True
        assert any(isinstance(v, float) for v in result[gate].values()), result[gate]
    assert set(result["seconds"]) >= {"write_model", "import", "import_parity", "train", "export", "total"}


def _numel(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n
