"""Partial reruns, scoped by mode: editing a source file reruns the shards of exactly the modes
that use it (morphcpt.shards.SOURCE_MODES) and their descendants, nothing upstream (download,
chunking, NeMo import) and no other mode, on a copy of the workflow."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from morphcpt.shards import ALL_MODES, SOURCE_MODES

pytestmark = pytest.mark.slow

# Run inside the copied workflow: the Snakefile puts the copy's src/ first on sys.path.
_DAG_SCRIPT = r"""
import contextlib, io, json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, DAGSettings, OutputSettings, ResourceSettings

mode, configfile = sys.argv[1], sys.argv[2]
sink = io.StringIO()
with contextlib.redirect_stderr(sink), contextlib.redirect_stdout(sink):
    with SnakemakeApi(OutputSettings()) as api:
        wf_api = api.workflow(resource_settings=ResourceSettings(cores=1),
                              config_settings=ConfigSettings(configfiles=[Path(configfile)]),
                              snakefile=Path("Snakefile"), workdir=Path("."))
        forceall = mode == "all"
        dag_api = wf_api.dag(DAGSettings(targets={"all"}, forceall=forceall))
        workflow = dag_api.workflow_api._workflow
        workflow._prepare_dag(forceall=forceall, ignore_incomplete=True, lock_warn_only=True)
        workflow._build_dag()
        jobs = list(workflow.dag.jobs) if forceall else list(workflow.dag.needrun_jobs(exclude_finished=False))
        rows = [{"rule": j.rule.name, "outputs": [[str(f), bool(f.is_directory)] for f in j.output]} for j in jobs]
print("DAG-JSON " + json.dumps(rows))
"""


def _copy_workflow(repo: Path, dest: Path) -> Path:
    dest.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", ".pytest_cache")
    for name in ("Snakefile", "rules", "workflow", "src", "config", "envs"):
        src = repo / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore)
        else:
            shutil.copy2(src, dest / name)
    return dest


def _dag(workdir: Path, mode: str, configfile: Path) -> list[dict]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", _DAG_SCRIPT, mode, str(configfile)], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=300)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("DAG-JSON ")), None)
    assert proc.returncode == 0 and line, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(line[len("DAG-JSON "):])


# One edited file per distinct set of modes in SOURCE_MODES (a file only Patok uses, one
# StochasTok and Patok use, one every mode uses, one no shard uses), so a new grouping is covered.
_EDITS = {}
for _rel, _modes in SOURCE_MODES.items():
    _EDITS.setdefault(tuple(sorted(_modes)), _rel)
EDIT_CASES = sorted(((rel, modes) for modes, rel in _EDITS.items()), key=lambda c: (-len(c[1]), c[0]))


def _mode_of(job: dict) -> str | None:
    """The mode a job belongs to, from its output paths (.../shards/<tok>/<mode>/..., .../<mode>/train/...)."""
    for path, _ in job["outputs"]:
        parts = Path(path).parts
        for mode in (*ALL_MODES, "base"):
            if mode in parts:
                return mode
    return None


@pytest.fixture(scope="module")
def finished_workflow(tmp_path_factory, repo_root):
    """A copy of the workflow whose every output exists and is up to date (placeholders + --touch)."""
    wf = _copy_workflow(repo_root, tmp_path_factory.mktemp("rerun") / "wf")
    (wf / "corpus.jsonl").write_text('{"text": "Kumain na ako."}\n{"text": "Naglaro sila."}\n')
    config = yaml.safe_load((repo_root / "config" / "demo.yaml").read_text())
    config.update(results_dir="results")
    config["corpus"].update(source="local", local_path="corpus.jsonl", chunks=2)
    config["evaluation"]["benchmarks"] = {"langgame": {"source": "generated"}}
    configfile = wf / "test.yaml"
    configfile.write_text(yaml.safe_dump(config))

    jobs = _dag(wf, "all", configfile)
    for job in jobs:
        for path, is_dir in job["outputs"]:
            target = wf / path
            if is_dir:
                target.mkdir(parents=True, exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text("placeholder\n")
    touched = subprocess.run([sys.executable, "-m", "snakemake", "all", "--touch", "-c1", "--configfile", str(configfile)],
                             cwd=wf, capture_output=True, text=True, timeout=300)
    assert touched.returncode == 0, touched.stderr[-3000:]
    assert _dag(wf, "needrun", configfile) == [], "nothing should be left to run after --touch"
    return wf, configfile, config, jobs


@pytest.mark.parametrize("rel,modes", EDIT_CASES, ids=[f"{r}->{'+'.join(m) or 'none'}" for r, m in EDIT_CASES])
def test_an_edit_reruns_only_the_modes_that_use_the_file(finished_workflow, rel, modes):
    wf, configfile, config, jobs = finished_workflow
    edited = wf / "src" / "morphcpt" / rel
    original, stat = edited.read_bytes(), edited.stat()
    # a content edit, strictly newer than every output
    comment = b"\n# edited by test_partial_rerun\n" if edited.suffix == ".py" else b"\n"
    edited.write_bytes(original + comment)
    future = time.time() + 60
    os.utime(edited, (future, future))
    try:
        rerun_jobs = _dag(wf, "needrun", configfile)
    finally:  # back to the finished state for the next case
        edited.write_bytes(original)
        os.utime(edited, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    rerun = Counter(job["rule"] for job in rerun_jobs)
    all_jobs = Counter(job["rule"] for job in jobs)
    n_modes, n_chunks, n_steps = len(modes), 2, len(config["export"]["steps"])
    if not modes:  # a module that never runs while a shard is written: nothing reruns
        assert rerun_jobs == [], f"editing {rel} must rerun nothing: {dict(rerun)}"
        return
    assert all_jobs["tokenize"] == len(ALL_MODES) * n_chunks
    assert rerun["tokenize"] == n_modes * n_chunks, f"editing {rel}: {dict(rerun)}"
    assert {_mode_of(j) for j in rerun_jobs if j["rule"] in ("tokenize", "train", "export", "evaluate")} == set(modes)
    for rule in ("download_model", "import_nemo", "import_parity", "download_corpus", "split_chunks", "fetch_benchmark"):
        assert rerun[rule] == 0, f"{rule} must not rerun after editing {rel}: {dict(rerun)}"
    assert rerun["train"] == n_modes and rerun["export"] == n_modes * n_steps
    # evaluations of the rerun modes' exports rerun; the base model's evaluation (step 0) does not
    assert rerun["evaluate"] == n_modes * n_steps * len(config["evaluation"]["benchmarks"])
    assert set(rerun) <= {"tokenize", "train", "export", "evaluate", "aggregate", "compare", "all",
                          "training_curves", "run_summary", "scores_page", "comparison_page"}
