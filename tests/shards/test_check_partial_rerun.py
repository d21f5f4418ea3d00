"""scripts/check_partial_rerun.py (run by .ci/run on the CI demo): its comparison logic. Each check
fails on the mismatch it is there for: a job of another mode or rule, a missing Patok job, a touched
output of another mode, stale shard fingerprints, a run that resumed instead of starting over."""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def check():
    spec = importlib.util.spec_from_file_location("check_partial_rerun", REPO / "scripts" / "check_partial_rerun.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


LOG = """\
Building DAG of jobs...
[Wed Dec  2 15:00:00 2026]
rule tokenize:
    input: results/corpus/chunks/chunk_000.jsonl
    output: results/shards/llama3/patok/chunk_000.bin
    jobid: 7
    reason: Updated input files: src/morphcpt/tokenization/patok.py
    wildcards: tokenizer=llama3, mode=patok, chunk=000
    resources: tmpdir=/tmp
rule train:
    wildcards: family=tiny_llama, mode=patok
rule export:
    wildcards: family=tiny_llama, mode=patok, step=15
rule evaluate:
    wildcards: family=tiny_llama, eval_mode=patok, step=15
rule aggregate:
    wildcards: family=tiny_llama
localrule compare:
    jobid: 1
localrule demo:
    jobid: 0
"""


def test_the_job_list_is_read_from_snakemakes_log(check):
    jobs = check.parse_jobs(LOG)
    assert [r for r, _ in jobs] == ["tokenize", "train", "export", "evaluate", "aggregate", "compare", "demo"]
    assert jobs[0][1] == {"tokenizer": "llama3", "mode": "patok", "chunk": "000"}
    assert jobs[3][1]["eval_mode"] == "patok" and jobs[5][1] == {}
    assert check.job_problems(jobs) == []


def test_a_job_of_another_mode_or_stage_or_a_missing_patok_job_is_reported(check):
    jobs = check.parse_jobs(LOG)
    other = jobs + [("train", {"family": "tiny_llama", "mode": "vanilla"}), ("import_nemo", {"family": "tiny_llama"})]
    problems = check.job_problems(other)
    assert len(problems) == 2 and "job train (family=tiny_llama, mode=vanilla) ran" in problems[0]
    assert "job import_nemo" in problems[1]
    assert check.job_problems([j for j in jobs if j[0] != "export"]) == ["no export job of patok ran"]
    assert "no report job ran" in check.job_problems([j for j in jobs if j[0] not in check.REPORT_RULES])


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_outputs_of_other_modes_must_keep_mtime_and_content(check, tmp_path):
    files = ["tiny_llama/vanilla/train/metrics.json", "tiny_llama/stochastok/train/metrics.json",
             "tiny_llama/eval/base/step_0/cute.json", "tiny_llama/nemo/weights.bin",
             "tiny_llama/patok/train/metrics.json", "tiny_llama/report/scores.csv", "logs/aggregate/tiny_llama.log"]
    for rel in files:
        _write(tmp_path, rel, rel)
    before = check.snapshot(tmp_path)
    assert set(before) == set(files)
    assert before["tiny_llama/nemo/weights.bin"][1] == hashlib.sha256(b"tiny_llama/nemo/weights.bin").hexdigest()
    # The edited mode and the reports may change; nothing else did.
    _write(tmp_path, "tiny_llama/patok/train/metrics.json", "new")
    _write(tmp_path, "tiny_llama/report/scores.csv", "new")
    _write(tmp_path, "logs/aggregate/tiny_llama.log", "new")
    _write(tmp_path, "logs/train/tiny_llama/patok.log", "new")
    assert check.file_problems(before, check.snapshot(tmp_path)) == []
    # A vanilla output rewritten with the same bytes (new mtime), a StochasTok output changed with
    # its mtime put back, the import removed, a new file of another mode.
    vanilla = tmp_path / "tiny_llama/vanilla/train/metrics.json"
    vanilla.write_text(vanilla.read_text())
    os.utime(vanilla, ns=(0, before["tiny_llama/vanilla/train/metrics.json"][0] + 10**9))
    sto = tmp_path / "tiny_llama/stochastok/train/metrics.json"
    sto.write_text("changed")
    os.utime(sto, ns=(0, before["tiny_llama/stochastok/train/metrics.json"][0]))
    (tmp_path / "tiny_llama/nemo/weights.bin").unlink()
    _write(tmp_path, "tiny_llama/vanilla/export/step_15/model.safetensors", "x")
    problems = check.file_problems(before, check.snapshot(tmp_path))
    assert problems == ["tiny_llama/nemo/weights.bin: removed",
                        "tiny_llama/stochastok/train/metrics.json: content changed (same mtime)",
                        "tiny_llama/vanilla/train/metrics.json: mtime changed",
                        "tiny_llama/vanilla/export/step_15/model.safetensors: new file outside patok's outputs and the reports"]


def test_a_results_dir_without_other_modes_is_no_evidence(check):
    before = {"tiny_llama/patok/train/metrics.json": (1, "a")}
    problems = check.file_problems(before, before)
    assert [p for p in problems if "nothing to compare" in p] == [
        f"no output of {m} in the results: nothing to compare" for m in ("vanilla", "stochastok", "base")]


def test_metrics_json_must_record_the_new_shard_fingerprints_and_a_fresh_start(check):
    sidecars = {"r/shards/llama3/patok/chunk_000.json": '{"code_version": "new"}'}
    new = {"chunk_000": hashlib.sha256(b'{"code_version": "new"}').hexdigest()}
    old = {"chunk_000": hashlib.sha256(b'{"code_version": "old"}').hexdigest()}
    fresh = [{"start_step": 0}]
    assert check.identity_problems({"run_identity": {"shards": new}}, old, sidecars, fresh) == []
    stale = check.identity_problems({"run_identity": {"shards": old}}, old, sidecars, fresh)
    assert len(stale) == 2 and "still records the shard fingerprints from before the edit" in stale[1]
    resumed = check.identity_problems({"run_identity": {"shards": new}}, old, sidecars, [{"start_step": 15}])
    assert resumed == ["the retrained run did not start from step 0 (runs.jsonl: [{'start_step': 15}])"]


def test_the_edited_file_is_patok_only(check):
    from morphcpt.shards import SOURCE_MODES

    path = check.patok_only_file()
    assert path.is_file() and SOURCE_MODES[path.relative_to(REPO / "src" / "morphcpt").as_posix()] == ("patok",)
