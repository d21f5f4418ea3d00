"""GPU jobs check, before any work, that CUDA sees the devices they asked for (issue 19.4;
morphcpt.cuda_devices, called by run_stage for every job with gpu > 0). On this CPU machine torch
sees no CUDA, so a GPU request must stop the job with the node and the driver it needs."""

from __future__ import annotations

import socket
from types import SimpleNamespace

import pytest
import torch

from morphcpt.cuda_devices import FAKE_GPUS_ENV, check_cuda_devices, needed_driver
from morphcpt.errors import MorphcptError
from morphcpt.stage_io import run_stage


def test_no_gpu_requested_needs_no_cuda():
    assert check_cuda_devices("tokenize", 0) == 0


def test_a_gpu_job_without_cuda_stops_naming_node_and_driver(monkeypatch):
    monkeypatch.delenv(FAKE_GPUS_ENV, raising=False)
    assert not torch.cuda.is_available()  # the premise: CI has no GPU
    with pytest.raises(MorphcptError) as info:
        check_cuda_devices("train", 2)
    msg = str(info.value)
    assert msg.startswith("train asked for 2 GPU(s) but CUDA sees 0 on node " + socket.gethostname())
    assert "CPU build" in msg and "nemo_container" in msg and "Nothing was done" in msg


def test_the_driver_named_follows_torchs_cuda():
    assert needed_driver("13.0") == "NVIDIA driver >= 580.65.06 for CUDA 13.0"
    assert needed_driver("12.8") == "NVIDIA driver >= 525.60.13 for CUDA 12.8"


def test_run_stage_stops_before_the_stage_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(FAKE_GPUS_ENV, raising=False)
    log = tmp_path / "job.log"
    ran = []
    smk = SimpleNamespace(log=[str(log)], rule="import_parity", output=[str(tmp_path / "out.json")],
                          resources=SimpleNamespace(gpu=1))
    with pytest.raises(SystemExit):
        run_stage(smk, ran.append)
    assert ran == []
    assert "import_parity: error: import_parity asked for 1 GPU(s) but CUDA sees 0" in capsys.readouterr().err
    assert "CUDA sees 0 on node" in log.read_text()


def test_fake_gpus_of_the_test_cluster_only_log(monkeypatch, capsys):
    monkeypatch.setenv(FAKE_GPUS_ENV, "1")
    assert check_cuda_devices("import_nemo", 2) == 0
    assert f"running on CPU because {FAKE_GPUS_ENV}=1" in capsys.readouterr().out
