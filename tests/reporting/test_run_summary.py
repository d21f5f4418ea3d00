"""Run summary: every gate with its verdict and numbers, training per mode, software, logs."""

from __future__ import annotations

import csv
import os

import pytest
from report_fixtures import GBS, MAX_STEPS, SEQ, write_parity

from morphcpt.errors import MorphcptError
from morphcpt.layout import Layout
from morphcpt.reporting.run_summary import family_logs, write_run_summary


def _summary(tmp_path, train_folders, export_passed=True):
    results = tmp_path
    imp = write_parity(results / "fam" / "nemo_parity.json")
    exports = {(m, s): write_parity(results / "fam" / m / "export" / f"step_{s}.parity.json",
                                    passed=export_passed or (m, s) != ("patok", 20), rel_diff=3e-7)
               for m in ("vanilla", "patok") for s in (10, 20)}
    log = results / "logs" / "train" / "fam" / "vanilla.log"
    log.parent.mkdir(parents=True)
    log.write_text("train: ok\n")
    logs = [("train", "vanilla", str(log)), ("train", "patok", str(results / "logs/train/fam/patok.log"))]
    outputs = {k: results / "fam" / "report" / f"run_summary.{k}" for k in ("md", "csv", "html")}
    rows = write_run_summary("fam", imp, train_folders, exports, logs, outputs, results)
    return rows, outputs


def test_every_gate_training_software_and_logs(tmp_path, train_folders):
    rows, out = _summary(tmp_path, train_folders)
    md = out["md"].read_text()
    gates = [line for line in md.splitlines() if line.startswith("| import parity") or line.startswith("| step-0")
             or line.startswith("| export parity")]
    assert len(gates) == 1 + 2 + 4 and all("**passed**" in g for g in gates)
    assert "rel_diff 2e-07, top1_agreement 1, kl 3e-12" in gates[0] and "rel_diff ≤ 1e-05" in gates[0]
    assert "[fam/nemo_parity.json](../nemo_parity.json)" in gates[0]
    (van0,) = [g for g in gates if g.startswith("| step-0") and "| vanilla |" in g]
    assert "gap 1.00e-06; control gap 5.00e-02" in van0 and "gap < 0.01" in van0
    assert sum(g.startswith("| export parity") and "| patok | 20 |" in g for g in gates) == 1
    (van,) = [line for line in md.splitlines() if line.startswith("| vanilla |") and "launches" not in line]
    cells = [c.strip() for c in van.strip("|").split("|")]
    # mode, steps, tokens, launches, resumed at, redone, final loss, wall time, time in steps, tokens/s, checkpoints
    assert cells[1:6] == [str(MAX_STEPS), str(MAX_STEPS * GBS * SEQ), "2", "6", "4"]
    assert cells[6] == f"{10.0 - 0.2 * 19:.4g}" and cells[7] == "120" and cells[10] == "10 20"
    assert cells[8] == f"{(6 * 0.5 + 14 * 1.0):.4g}"  # kept records: steps 0-5 of launch 1, 6-19 of launch 2
    assert "| nemo | 2.7.0 | import_parity, train x2, export x4 |" in md
    assert "[logs/train/fam/vanilla.log](../../logs/train/fam/vanilla.log)" in md
    assert "logs/train/fam/patok.log (missing)" in md
    html = out["html"].read_text()
    assert html.count("<table>") == 4 and "<strong>passed</strong>" in html and "<h1>Run summary: fam</h1>" in html
    table = list(csv.DictReader(out["csv"].open()))
    assert len(table) == len(rows)
    assert {(r["item"], r["mode"], r["step"]) for r in table if r["section"] == "gate"} == {
        ("import_parity", "", ""), ("step0", "vanilla", "0"), ("step0", "patok", "0")} | {
        ("export_parity", m, str(s)) for m in ("vanilla", "patok") for s in (10, 20)}
    assert {r["verdict"] for r in table if r["section"] == "gate"} == {"passed"}


def test_a_failed_gate_is_shown_failed(tmp_path, train_folders):
    rows, out = _summary(tmp_path, train_folders, export_passed=False)
    assert {(r["mode"], r["step"]) for r in rows if r.get("verdict") == "FAILED"} == {("patok", 20)}
    assert "| patok | 20 | **FAILED** |" in out["md"].read_text()


def test_a_parity_report_without_its_numbers_is_refused(tmp_path, train_folders):
    bad = tmp_path / "fam" / "nemo_parity.json"
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_text('{"passed": true, "rel_diff": 0.0, "thresholds": {}}')
    with pytest.raises(MorphcptError, match=r"nemo_parity.json: parity report lacks top1_agreement, kl, "
                                            r"thresholds.max_rel_diff"):
        write_run_summary("fam", bad, train_folders, {}, [], {k: tmp_path / f"s.{k}" for k in ("md", "csv", "html")},
                          tmp_path)
    assert not list(tmp_path.glob("s.*"))


def test_family_logs_follow_the_layout():
    config = {"results_dir": "r", "families": {"f": {"tokenizer": "t", "arch": "llama"}}, "modes": {"vanilla": {}},
              "export": {"steps": [5]}, "corpus": {"chunks": 1}, "evaluation": {"benchmarks": {}}}
    logs = family_logs(Layout(config), "f")
    assert ("train", "vanilla", "r/logs/train/f/vanilla.log") in logs
    assert ("export", "vanilla step 5", "r/logs/export/f/vanilla/step_5.log") in logs
    assert ("evaluate", "base step 0", "r/logs/evaluate/f/base/step_0.log") in logs


def test_wall_time_is_not_made_up_when_file_times_disagree(tmp_path, train_folders):
    os.utime(train_folders["patok"], (1.0e9 - 5, 1.0e9 - 5))  # metrics.json older than the first launch
    rows, _ = _summary(tmp_path, train_folders)
    walls = {r["mode"]: r["value"] for r in rows if r["metric"] == "wall_seconds"}
    assert walls == {"vanilla": 120.0, "patok": None}


def test_the_step0_gate_batch_gaps_are_shown(tmp_path, train_folders):
    import json

    metrics = train_folders["vanilla"]  # the metrics.json of the folder
    summary = json.loads(metrics.read_text())
    summary["step0_gate"].update(gate_batch={"relative_diff": 2e-6}, control_gap=0.0123, min_separation=5.0)
    metrics.write_text(json.dumps(summary))
    rows, out = _summary(tmp_path, train_folders)
    (van0,) = [line for line in out["md"].read_text().splitlines()
               if line.startswith("| step-0") and "| vanilla |" in line]
    assert "gate batch: gap 2.00e-06, objectives 1.23e-02 apart" in van0
    assert "gate batch gap < 0.01 and closer than the control, objectives apart ≥ 5 × 0.01" in van0
    values = {r["metric"]: r["value"] for r in rows if r["item"] == "step0" and r["mode"] == "vanilla"}
    assert values["control_gap"] == 0.0123 and values["gate_batch_relative_diff"] == 2e-6
