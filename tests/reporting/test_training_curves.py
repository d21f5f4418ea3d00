"""Training curves from the train folders: the plotted data (CSV), resumes, checkpoints and the
step-0 reference; strict about required fields, tolerant of extra ones."""

from __future__ import annotations

import csv
import json

import pytest
from report_fixtures import GBS, MAX_STEPS, SEQ, write_train_folder

from morphcpt.errors import MorphcptError
from morphcpt.reporting.training_curves import smoothing_window, trailing_mean, write_training_curves
from morphcpt.reporting.training_log import read_training_log


def test_curves_csv_holds_latest_records_resumes_checkpoints_and_reference(tmp_path, train_folders):
    png, out = tmp_path / "out" / "curves.png", tmp_path / "out" / "curves.csv"
    write_training_curves("fam", train_folders, png, out)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    rows = list(csv.DictReader(out.open()))
    van = [r for r in rows if r["mode"] == "vanilla"]
    steps = [r for r in van if r["kind"] == "step"]
    assert [int(r["step"]) for r in steps] == list(range(MAX_STEPS))  # each step once
    # steps 6-9 ran twice: the resumed launch's record is the one kept (loss 10 - 0.2 s, lr 5e-4)
    assert float(steps[8]["loss"]) == pytest.approx(10.0 - 1.6) and float(steps[8]["lr"]) == 5e-4
    assert float(steps[5]["loss"]) == pytest.approx(10.0 - 0.5)
    assert [int(r["tokens_seen"]) for r in steps[:3]] == [0, GBS * SEQ, 2 * GBS * SEQ]
    assert [(r["step"], r["tokens_seen"]) for r in van if r["kind"] == "resume"] == [("6", str(6 * GBS * SEQ))]
    assert [r["step"] for r in van if r["kind"] == "checkpoint"] == ["10", "20"]
    (ref,) = [r for r in van if r["kind"] == "step0_reference"]
    assert float(ref["loss"]) == pytest.approx(10.0 * (1 + 1e-6)) and ref["tokens_seen"] == "0"
    window = smoothing_window(MAX_STEPS)
    assert int(steps[0]["smoothing_window"]) == window == 2
    assert float(steps[3]["loss_smoothed"]) == pytest.approx((float(steps[2]["loss"]) + float(steps[3]["loss"])) / 2)
    patok = [r for r in rows if r["mode"] == "patok"]
    assert not [r for r in patok if r["kind"] == "resume"] and len([r for r in patok if r["kind"] == "step"]) == MAX_STEPS


def test_trailing_mean_keeps_a_divergence_visible():
    assert trailing_mean([1.0, 3.0, 5.0], 2) == [1.0, 2.0, 4.0]
    out = trailing_mean([1.0, float("nan"), 5.0, 7.0], 2)
    assert out[0] == 1.0 and out[1] != out[1] and out[2] != out[2] and out[3] == 6.0


def test_extra_fields_are_tolerated(tmp_path):
    log = read_training_log(write_train_folder(tmp_path / "t", extra={"resumed_from": "ck", "grad_norm": 1.2}), "m")
    assert log.resume_steps == [6] and log.records == 24 and log.tokens_seen == MAX_STEPS * GBS * SEQ


@pytest.mark.parametrize("damage,message", [
    (lambda d: (d / "metrics.jsonl").write_text('{"step": 0, "lr": 0.1, "seconds": 1}\n'), r"metrics.jsonl:1: .*loss"),
    (lambda d: (d / "metrics.jsonl").write_text('{"step": 0, "loss": 1, "lr": 0.1, "seconds": 1}\n\n{oops\n'),
     r"metrics.jsonl:3: not UTF-8 JSON"),
    (lambda d: (d / "metrics.jsonl").write_text('{"step": "0", "loss": 1, "lr": 0.1, "seconds": 1}\n'),
     r"metrics.jsonl:1: .*step \(int\)"),
    (lambda d: (d / "runs.jsonl").unlink(), r"runs.jsonl: missing; .*rerun the train rule"),
    (lambda d: (d / "metrics.jsonl").write_text("".join(
        json.dumps({"step": s, "loss": 1.0, "lr": 0.1, "seconds": 1}) + "\n" for s in range(5))),
     r"metrics.jsonl: steps \[5, 6, .*missing of 0..19"),
])
def test_bad_train_folder_names_file_line_and_fix(tmp_path, damage, message):
    metrics = write_train_folder(tmp_path / "t")
    damage(metrics.parent)
    with pytest.raises(MorphcptError, match=message):
        write_training_curves("fam", {"vanilla": metrics}, tmp_path / "c.png", tmp_path / "c.csv")
    assert not (tmp_path / "c.png").exists() and not (tmp_path / "c.csv").exists()


def test_metrics_json_without_the_gate_is_refused(tmp_path):
    metrics = write_train_folder(tmp_path / "t")
    summary = json.loads(metrics.read_text())
    del summary["step0_gate"]["hf_loss"]
    metrics.write_text(json.dumps(summary))
    with pytest.raises(MorphcptError, match=r"metrics.json: step0_gate lacks hf_loss"):
        read_training_log(metrics, "vanilla")
