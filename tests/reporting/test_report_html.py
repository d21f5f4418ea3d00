"""Snakemake's HTML report of the demo, built as `make report` builds it, read back the way the
browser gets it: every expected result embedded, with its caption, category and the right content.

Needs the demo's results (`make demo`; .ci/run runs it first). Without them the test skips, unless
MORPHCPT_REQUIRE_DEMO_REPORT=1 (set by .ci/run) makes the skip a failure. MORPHCPT_DEMO_RESULTS
points it at a demo run with another results_dir.
"""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

CATEGORIES = ("1. Gates and run summary", "2. Training", "3. Evaluation", "4. Comparison")


def _script_json(html: str, script_id: str, var: str):
    m = re.search(rf'<script id="{script_id}">\s*var {var} = (.*?);\s*</script>', html, re.S)
    assert m, f"no {script_id} data in the report"
    return json.loads(m.group(1))


def _data(entry: dict) -> bytes:
    uri = entry["data_uri"]
    assert uri.startswith("data:") and ";base64," in uri, uri[:80]
    return base64.b64decode(uri.split(";base64,", 1)[1])


@pytest.fixture(scope="module")
def demo(repo_root, tmp_path_factory):
    config = yaml.safe_load((repo_root / "config" / "demo.yaml").read_text())
    results = Path(os.environ.get("MORPHCPT_DEMO_RESULTS") or repo_root / config["results_dir"])
    if not (results / "report" / "comparison.html").is_file():  # the demo's last output
        msg = f"no finished demo run in {results} (run `make demo` first)"
        if os.environ.get("MORPHCPT_REQUIRE_DEMO_REPORT") == "1":
            pytest.fail(msg + "; MORPHCPT_REQUIRE_DEMO_REPORT=1 requires it")
        pytest.skip(msg)
    out = tmp_path_factory.mktemp("report") / "report.html"
    # The command of `make report`, with another output (and --nolock: a demo run may hold the lock).
    cmd = [sys.executable, "-m", "snakemake", "--profile", "profiles/local", "demo", "--configfile",
           "config/demo.yaml", "--report", str(out), "--nolock"]
    if os.environ.get("MORPHCPT_DEMO_RESULTS"):
        cmd[-3:-3] = ["--config", f"results_dir={results}"]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    proc = subprocess.run(cmd, cwd=repo_root, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    config["results_dir"] = str(results)
    return config, out.read_text(encoding="utf-8")


def _entry(results: dict, suffix: str) -> dict:
    found = [v for k, v in results.items() if k.endswith(suffix)]
    assert len(found) == 1, f"{suffix}: {len(found)} entries in the report; has {sorted(results)}"
    return found[0]


def test_report_holds_every_item_with_caption_and_category(demo):
    config, html = demo
    results = _script_json(html, "results", "results")
    categories = _script_json(html, "categories", "categories")
    assert set(categories) == set(CATEGORIES)
    families = list(config["families"])
    expected = {"report/comparison.csv": ("4. Comparison", "standard error"),
                "report/comparison.md": ("4. Comparison", "standard error"),
                "report/comparison.html": ("4. Comparison", "standard error"),
                "report/comparison.png": ("4. Comparison", "chance")}
    for fam in families:
        expected |= {f"{fam}/report/run_summary.{ext}": ("1. Gates and run summary", "step-0 gate")
                     for ext in ("md", "csv", "html")}
        expected |= {f"{fam}/report/training_curves.{ext}": ("2. Training", "resume") for ext in ("png", "csv")}
        expected |= {f"{fam}/report/scores.{ext}": ("3. Evaluation", "standard error") for ext in ("md", "csv", "html")}
        expected[f"{fam}/report/scores_vs_step.png"] = ("3. Evaluation", "chance")
    for suffix, (category, phrase) in expected.items():
        entry = _entry(results, suffix)
        assert phrase in entry["caption"], (suffix, entry["caption"][:300])
        family = suffix.split("/")[0] if not suffix.startswith("report/") else "all"
        assert entry["labels"]["family"] == family
        path = next(k for k in results if k.endswith(suffix))
        assert path in categories[category][family], (suffix, category)
    assert len(results) == len(expected)
    desc = json.loads(re.search(r'<script id="workflow-desc">\s*var workflow_desc = (.*?);\s*</script>',
                                html, re.S).group(1))
    assert all(c.split(". ", 1)[1] in desc for c in CATEGORIES)
    for suffix in [s for s in expected if s.endswith(".png")]:
        data = _data(_entry(results, suffix))
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000, suffix


def test_report_content_is_the_demo_run(demo):
    config, html = demo
    results = _script_json(html, "results", "results")
    modes, steps = list(config["modes"]), sorted(config["export"]["steps"])
    max_steps = config["training"]["max_steps"]
    for fam in config["families"]:
        curves = list(csv.DictReader(io.StringIO(_data(_entry(results, f"{fam}/report/training_curves.csv")).decode())))
        for mode in modes:
            rows = [r for r in curves if r["mode"] == mode]
            assert [int(r["step"]) for r in rows if r["kind"] == "step"] == list(range(max_steps)), mode
            assert sum(r["kind"] == "step0_reference" for r in rows) == 1
            assert [int(r["step"]) for r in rows if r["kind"] == "checkpoint"] == steps
        summary = list(csv.DictReader(io.StringIO(_data(_entry(results, f"{fam}/report/run_summary.csv")).decode())))
        gates = {(r["item"], r["mode"], r["step"]): r["verdict"] for r in summary if r["section"] == "gate"}
        assert gates == {("import_parity", "", ""): "passed", **{("step0", m, "0"): "passed" for m in modes},
                         **{("export_parity", m, str(s)): "passed" for m in modes for s in steps}}
        page = _data(_entry(results, f"{fam}/report/run_summary.html")).decode()
        assert page.count("<strong>passed</strong>") == len(gates) and "tokens seen" in page
        scores = _data(_entry(results, f"{fam}/report/scores.html")).decode()
        assert "<table>" in scores and "pacute" in scores
    comparison = _data(_entry(results, "report/comparison.html")).decode()
    assert "<table>" in comparison and all(name in comparison for name in [*config["families"], *modes])
