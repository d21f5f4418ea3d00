"""The NeMo rules' stack check: the pinned CPU stack passes, each way out of it is named."""

from __future__ import annotations

import re

import pytest

from morphcpt.errors import MorphcptError
from morphcpt.models import nemo_stack

# A stack as the pinned NeMo container reports it (NeMo 2.7.0 with a megatron-core 0.16 pre-release).
CONTAINER = {"python": "3.12.3", "nemo": "2.7.0", "megatron.core": "0.16.0rc0", "transformers": "4.57.1",
             "torch": "2.10.0a0+b4e4ee81d3.nv25.12", "transformer_engine": "2.12.0+1a2b3c4",
             "cuda_available": True, "torch_cuda": "13.0", "device": "NVIDIA H100 80GB HBM3",
             "container": "/scratch/nemo_26.02.sif"}


def test_the_pinned_cpu_stack_passes():
    versions = nemo_stack.installed()
    assert versions["nemo"] == "2.7.3" and versions["megatron.core"] == "0.15.3", versions
    assert versions["transformers"].startswith("4.57.") and versions["cuda_available"] is False
    assert nemo_stack.problems(versions) == []
    assert nemo_stack.check() == versions


def test_the_container_stack_passes():
    assert nemo_stack.problems(CONTAINER) == []


@pytest.mark.parametrize(("name", "version", "expected"), [
    ("nemo", "3.0.0", "nemo 3.0.0 is installed, need >=2.7.0rc0,<2.8: .*NeMo 3 removed it"),
    ("nemo", "2.6.0", "nemo 2.6.0 is installed"),
    ("nemo", "2.8.0rc1", "nemo 2.8.0rc1 is installed"),
    ("nemo", None, "nemo is not installed"),
    ("megatron.core", "0.14.0", "megatron.core 0.14.0 is installed"),
    ("megatron.core", "0.17.0", "megatron.core 0.17.0 is installed"),
    ("transformers", "5.0.0", "transformers 5.0.0 is installed, need <5: .*rope_theta"),
    ("transformers", "not-a-version", "transformers not-a-version is installed"),
])
def test_each_version_outside_the_range_is_named(name, version, expected):
    found = nemo_stack.problems({**CONTAINER, name: version})
    assert len(found) == 1 and re.search(expected, found[0]), found


def test_cuda_without_transformer_engine_is_refused_unless_opted_in():
    stack = {**CONTAINER, "transformer_engine": None}
    (found,) = nemo_stack.problems(stack)
    assert "TransformerEngine is not installed" in found and nemo_stack.ALLOW_GPU_WITHOUT_TE_ENV in found
    assert nemo_stack.problems(stack, allow_without_te=True) == []
    # Without CUDA, TE is not needed (the CPU shims stand in for it).
    assert nemo_stack.problems({**stack, "cuda_available": False}) == []


def test_check_lists_every_problem_and_the_fix(monkeypatch):
    bad = {**CONTAINER, "nemo": "3.0.0", "transformer_engine": None}
    monkeypatch.setattr(nemo_stack, "installed", lambda: bad)
    monkeypatch.delenv(nemo_stack.ALLOW_GPU_WITHOUT_TE_ENV, raising=False)
    with pytest.raises(MorphcptError) as err:
        nemo_stack.check()
    text = str(err.value)
    assert "container /scratch/nemo_26.02.sif" in text and "nemo 3.0.0" in text and "TransformerEngine" in text
    assert "nemo_container" in text and "apptainer exec --nv" in text
    monkeypatch.setenv(nemo_stack.ALLOW_GPU_WITHOUT_TE_ENV, "1")
    with pytest.raises(MorphcptError, match="nemo 3.0.0") as err:
        nemo_stack.check()
    assert "TransformerEngine" not in str(err.value)


def test_describe_names_the_versions():
    line = nemo_stack.describe(CONTAINER)
    assert line.startswith("NeMo 2.7.0, megatron-core 0.16.0rc0, TransformerEngine 2.12.0+1a2b3c4")
    assert "CUDA 13.0 on NVIDIA H100" in line and "container /scratch/nemo_26.02.sif" in line
    assert "TransformerEngine none" in nemo_stack.describe({**CONTAINER, "transformer_engine": None})
