"""Partial reruns: editing the Patok module reruns shards and everything downstream of them,
and nothing upstream (download, chunking, NeMo import), on a copy of the workflow."""

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


def _patok_module(workdir: Path) -> Path:
    """The module of the copy that defines the Patok processor."""
    found = [p for p in sorted((workdir / "src" / "morphcpt" / "tokenization").rglob("*.py"))
             if "class PatokProcessor" in p.read_text()]
    assert len(found) == 1, f"expected one module defining PatokProcessor, found {found}"
    return found[0]


def test_editing_patok_reruns_only_shards_and_downstream(tmp_path, repo_root):
    wf = _copy_workflow(repo_root, tmp_path / "wf")
    (wf / "corpus.jsonl").write_text('{"text": "Kumain na ako."}\n{"text": "Naglaro sila."}\n')
    config = yaml.safe_load((repo_root / "config" / "demo.yaml").read_text())
    config.update(results_dir="results")
    config["corpus"].update(source="local", local_path="corpus.jsonl", chunks=2)
    config["evaluation"]["benchmarks"] = {"langgame": {"source": "generated"}}
    configfile = wf / "test.yaml"
    configfile.write_text(yaml.safe_dump(config))

    # every output of the DAG exists and is marked done (placeholders, then --touch in DAG order)
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

    # a content edit of the Patok module, strictly newer than every output
    patok = _patok_module(wf)
    patok.write_text(patok.read_text() + "\n# edited by test_partial_rerun\n")
    future = time.time() + 60
    os.utime(patok, (future, future))

    rerun = Counter(job["rule"] for job in _dag(wf, "needrun", configfile))
    all_jobs = Counter(job["rule"] for job in jobs)
    n_modes, n_chunks, n_steps = len(config["modes"]), 2, len(config["export"]["steps"])
    assert rerun["tokenize"] == all_jobs["tokenize"] == n_modes * n_chunks
    for rule in ("download_model", "import_nemo", "import_parity", "download_corpus", "split_chunks", "fetch_benchmark"):
        assert rerun[rule] == 0, f"{rule} must not rerun after a Patok edit: {dict(rerun)}"
    assert rerun["train"] == n_modes and rerun["export"] == n_modes * n_steps
    # evaluations of exports rerun; the base model's evaluation (step 0) does not
    assert rerun["evaluate"] == all_jobs["evaluate"] - 1
    assert set(rerun) <= {"tokenize", "train", "export", "evaluate", "aggregate", "compare", "all"}
