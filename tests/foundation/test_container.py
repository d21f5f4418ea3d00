"""The NeMo image, started by the NeMo rules themselves (morphcpt.container, docs/design.md §11):
the argv run on a node, the folders bound, the GPU check and errors inside the image, the direct
CPU path, and the clear error on a node without apptainer. A stand-in `apptainer` on PATH (a
script made here) records its argv and runs the rest with this interpreter as the image's python."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from morphcpt import container
from morphcpt.errors import MorphcptError
from morphcpt.models import launch

IMAGE = "docker://nvcr.io/nvidia/nemo:26.02"


@pytest.fixture
def fake_apptainer(tmp_path, monkeypatch) -> Path:
    """A folder first on PATH with an `apptainer` that appends its argv (JSON) to calls.jsonl and
    runs what follows `exec --nv --bind FOLDERS IMAGE`, `python` being this interpreter."""
    folder = tmp_path / "bin"
    folder.mkdir()
    calls = tmp_path / "calls.jsonl"
    script = folder / "apptainer"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        f"with open({str(calls)!r}, 'a') as f:\n"
        "    f.write(json.dumps(sys.argv[1:]) + '\\n')\n"
        "assert sys.argv[1:3] == ['exec', '--nv'] and sys.argv[3] == '--bind', sys.argv\n"
        "rest = sys.argv[6:]\n"
        f"if rest[0] == 'python':\n    rest[0] = {sys.executable!r}\n"
        "os.execv(rest[0], rest)\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    return calls


def recorded(calls: Path) -> list[list[str]]:
    return [json.loads(line) for line in calls.read_text().splitlines()]


def test_without_an_image_everything_runs_directly(tmp_path):
    assert container.setting(None, tmp_path / "results") is None
    argv = [sys.executable, "-m", "morphcpt.models.train_worker", "spec.json"]
    assert container.wrap(argv, None) == argv
    # a call without an image is a plain call in this process
    assert container.call(None, "import_nemo", 0, "morphcpt.container:bind_folders", results_dir="results",
                          workdir=tmp_path) == container.bind_folders("results", tmp_path)


def test_no_apptainer_on_the_node_is_a_clear_error_naming_the_fix(tmp_path):
    with pytest.raises(MorphcptError) as err:
        container.setting(IMAGE, tmp_path / "results", env={"PATH": str(tmp_path)})
    msg = str(err.value)
    assert "neither apptainer nor singularity is on PATH on node" in msg and IMAGE in msg
    assert "Nothing was done" in msg and "module load apptainer" in msg and "nemo_container: null" in msg


def test_singularity_is_taken_when_there_is_no_apptainer(tmp_path):
    (tmp_path / "singularity").write_text("#!/bin/sh\n")
    (tmp_path / "singularity").chmod(0o755)
    assert container.runtime(IMAGE, env={"PATH": str(tmp_path)}) == str(tmp_path / "singularity")


def test_binds_cover_the_results_behind_a_link_and_the_repository(tmp_path):
    work, scratch = tmp_path / "work", tmp_path / "scratch" / "results"
    work.mkdir()
    scratch.mkdir(parents=True)
    (work / "results").symlink_to(scratch, target_is_directory=True)
    binds = container.bind_folders("results", work)
    assert str(work.resolve()) in binds and str(scratch.resolve()) in binds
    assert str(container.REPO_ROOT) in binds or any(Path(b) in container.REPO_ROOT.parents for b in binds)
    # a folder inside another bound one is not bound twice
    assert container.bind_folders(work / "inner", work).count(str(work.resolve())) == 1
    assert not any(b.startswith(str(work.resolve()) + "/") for b in container.bind_folders(work / "inner", work))


def test_wrap_builds_apptainer_exec_with_binds_and_the_images_python(tmp_path, fake_apptainer):
    (tmp_path / "work").mkdir()
    setting = container.setting(IMAGE, tmp_path / "scratch" / "results", workdir=tmp_path / "work")
    argv = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=8", "-m",
            "morphcpt.models.train_worker", "/r/spec.json"]
    wrapped = container.wrap(argv, setting)
    assert wrapped[:4] == [str(fake_apptainer.parent / "bin" / "apptainer"), "exec", "--nv", "--bind"]
    assert wrapped[4].split(",") == setting["binds"]
    assert {str((tmp_path / "work").resolve()), str((tmp_path / "scratch" / "results").resolve())} <= set(setting["binds"])
    assert wrapped[5] == IMAGE and wrapped[6:] == ["python", *argv[1:]]


def test_a_function_runs_in_the_image_and_its_result_comes_back(tmp_path, fake_apptainer, capsys):
    setting = container.setting(IMAGE, tmp_path / "results", workdir=tmp_path)
    result = container.call(setting, "import_nemo", 0, "morphcpt.container:bind_folders",
                            results_dir=Path("results"), workdir=tmp_path)
    assert result == container.bind_folders("results", tmp_path)
    (call,) = recorded(fake_apptainer)
    assert call[:2] == ["exec", "--nv"] and call[4] == IMAGE
    assert call[5:8] == ["python", "-m", "morphcpt.container"]
    assert json.loads(call[8])["target"] == "morphcpt.container:bind_folders"


def test_an_error_in_the_image_is_the_jobs_one_line_error(tmp_path, fake_apptainer):
    setting = container.setting(IMAGE, tmp_path / "results", workdir=tmp_path)
    with pytest.raises(MorphcptError) as err:  # runtime() fails in the image: its message comes back whole
        container.call(setting, "export", 0, "morphcpt.container:runtime", image="other.sif", env={"PATH": ""})
    assert str(err.value).startswith("neither apptainer nor singularity is on PATH") and "other.sif" in str(err.value)


def test_the_image_checks_the_gpus_the_job_asked_for_before_any_work(tmp_path, fake_apptainer, monkeypatch):
    monkeypatch.delenv("MORPHCPT_GPUS_ARE_FAKE", raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    setting = container.setting(IMAGE, tmp_path / "results", workdir=tmp_path)
    with pytest.raises(MorphcptError) as err:
        container.call(setting, "import_parity", 1, "morphcpt.container:bind_folders", results_dir="r")
    assert "import_parity asked for 1 GPU(s) but CUDA sees 0" in str(err.value) and "Nothing was done" in str(err.value)


def test_the_training_workers_start_in_the_image(tmp_path, fake_apptainer, monkeypatch):
    """launch_worker with a configured image: the worker argv (here one CPU rank, a stand-in
    module that only reads the spec) runs through `apptainer exec ... IMAGE python -m ...`."""
    monkeypatch.setattr(launch, "WORKER_MODULE", "json.tool")  # prints the spec file; exit 0
    train_dir = tmp_path / "train"
    train_dir.mkdir()
    spec = {"train_dir": str(train_dir), "checkpoint_dir": str(train_dir / "checkpoints"), "gpus": 0, "cpu_ranks": 1,
            "threads": 1, "training": {"max_steps": 1, "preemption_grace_s": 5},
            "container": container.setting(IMAGE, tmp_path / "results", workdir=tmp_path)}
    assert launch.launch_worker(spec) == 0
    (call,) = recorded(fake_apptainer)
    assert call[4] == IMAGE and call[5:] == ["python", "-m", "json.tool", str(train_dir / "train_spec.json")]


def test_runs_in_image_only_for_the_nemo_rules_with_an_image():
    assert container.runs_in_image("train", {"nemo_container": IMAGE})
    assert not container.runs_in_image("evaluate", {"nemo_container": IMAGE})
    assert not container.runs_in_image("train", {"nemo_container": None})
