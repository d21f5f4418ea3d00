"""The evaluation rules under Snakemake, on a copy of the workflow with the demo config:
fetch_benchmark for all five benchmarks (local demo fixtures + generated), one evaluate job for
the base model that scores every benchmark, then aggregate and compare. Training is another
stage: trained-mode results stand in as copies of the base results."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml


pytestmark = pytest.mark.slow

BENCHMARKS = ("pacute", "hierarchical", "cute", "langgame", "multi_digit_addition")


def _copy_workflow(repo: Path, dest: Path) -> Path:
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info", ".pytest_cache")
    for name in ("Snakefile", "rules", "workflow", "src", "config", "envs", "data/demo/benchmarks"):
        src = repo / name
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore)
        else:
            shutil.copy2(src, dest / name)
    return dest


def _snakemake(wf: Path, *args: str, env: dict) -> None:
    proc = subprocess.run([sys.executable, "-m", "snakemake", *args], cwd=wf, env=env, capture_output=True,
                          text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_demo_evaluation_and_reports_through_snakemake(tmp_path, repo_root, llama3_tokenizer_dir):
    wf = _copy_workflow(repo_root, tmp_path / "wf")
    config = yaml.safe_load((repo_root / "config" / "demo.yaml").read_text())
    config["results_dir"] = "results"
    config["evaluation"].update(limit=3, max_gen_tokens=4)
    configfile = wf / "test.yaml"
    configfile.write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["MORPHCPT_CACHE"] = str(llama3_tokenizer_dir.parent)  # the real tokenizer, already extracted
    family = next(iter(config["families"]))
    items = [f"results/benchmarks/{b}.jsonl" for b in BENCHMARKS]
    base = [f"results/{family}/eval/base/step_0/{b}.json" for b in BENCHMARKS]
    _snakemake(wf, *items, *base, "-c2", "--configfile", str(configfile), env=env)
    log = (wf / f"results/logs/evaluate/{family}/base/step_0.log").read_text()
    assert all(b in log for b in BENCHMARKS)  # one job scored every benchmark

    for b in BENCHMARKS:
        manifest = json.loads((wf / f"results/benchmarks/{b}.sources.json").read_text())
        assert manifest["items"] > 0 and manifest["source"] == config["evaluation"]["benchmarks"][b]["source"]
    points = [(mode, step) for mode in config["modes"] for step in config["export"]["steps"]]
    for b in BENCHMARKS:
        text = (wf / f"results/{family}/eval/base/step_0/{b}.json").read_text()
        result = json.loads(text, parse_constant=lambda c: pytest.fail(f"{b}: {c} in the result JSON"))
        assert result["provenance"]["mode"] == "base" and result["provenance"]["step"] == 0
        tasks = wf / f"results/{family}/eval/base/step_0/{b}.lm_eval_tasks"  # the rule's `tasks` output
        assert (tasks / "utils.py").is_file() and f"--include_path {tasks.relative_to(wf)}" in result["reproduce"]
        assert {p.stem for p in tasks.glob("*.yaml")} >= set(result["task_folder"]["groups"])
        assert result["provenance"]["model_dir"].endswith(f"{family}/hf")
        assert result["provenance"]["sources"]["benchmark"] == b
        assert all(s["n"] == 3 for s in result["summary"].values())
        # every demo question type has a second item: each example is of the item's own type
        assert all(s["fewshot_fallbacks"] == [] for s in result["summary"].values())
        assert result["provenance"]["dtype"] == "float32" and result["provenance"]["num_fewshot"] == {"mcq": 1, "gen": 1}
        for mode, step in points:
            result["provenance"].update(mode=mode, step=step)
            out = wf / f"results/{family}/eval/{mode}/step_{step}/{b}.json"
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(result))

    _snakemake(wf, "results/report/comparison.csv", "-c1", "--allowed-rules", "aggregate", "compare",
               "--configfile", str(configfile), env=env)
    for path in ("report/comparison.csv", "report/comparison.md", "report/comparison.png",
                 f"{family}/report/scores.csv", f"{family}/report/scores.md", f"{family}/report/scores_vs_step.png"):
        assert (wf / "results" / path).stat().st_size > 0, path
    md = (wf / "results/report/comparison.md").read_text()
    assert all(b in md for b in BENCHMARKS) and f"{family} patok" in md
