"""`morphcpt plan` shows each GPU rule's requested runtime beside its estimate and warns when a
request is below 1.5x or above 10x it (issue 19.8; docs/design.md §9)."""

from __future__ import annotations

import pytest

from morphcpt.plan import make_plan, runtime_warnings


def test_plan_lists_gpu_rules_with_requested_runtime_and_train_estimate(repo_root, tmp_path):
    plan = make_plan("all_llama", repo_root / "config" / "config.yaml", full=True, workdir=tmp_path)
    rows = {(r["rule"], r["family"]): r for r in plan["runtime"]}
    # import_nemo is not a GPU rule (NeMo's importer converts on CPU: issue 19.5)
    assert set(rows) == {("import_parity", None), ("train", "llama31_8b"),
                         ("export", None), ("evaluate", "llama31_8b")}
    train = rows[("train", "llama31_8b")]
    # 6·N·D at MFU 0.4 of 989 TFLOPS, over the family's 8 GPUs (same numbers as test_dag's GPU-hours)
    minutes = 6 * 8.03e9 * (5000 * 64 * 512) / (0.4 * 989e12) / 3600 / 8 * 60
    assert train["estimate_min"] == pytest.approx(minutes, abs=0.1)
    assert train["requested_min"] == 120 and 1.5 <= train["ratio"] <= 10
    assert rows[("export", None)]["estimate_min"] is None  # no estimate: shown as "-", never warned about
    # evaluate: 2·N·tokens (3-shot, all 5 benchmarks: ~3.4 M tokens) at MFU 0.4, times the measured 3x
    evaluate = rows[("evaluate", "llama31_8b")]
    assert evaluate["estimate_min"] == pytest.approx(2 * 8.03e9 * 3.436e6 / (0.4 * 989e12) / 60 * 3, abs=0.1)
    assert evaluate["requested_min"] == 20 and 1.5 <= evaluate["ratio"] <= 10
    assert runtime_warnings(plan["runtime"]) == []


def test_runtime_warnings_below_and_above():
    rows = [{"rule": "train", "family": "a", "requested_min": 40, "estimate_min": 41.6, "ratio": 0.96},
            {"rule": "train", "family": "b", "requested_min": 2880, "estimate_min": 13.5, "ratio": 213.3},
            {"rule": "train", "family": "c", "requested_min": 120, "estimate_min": 41.6, "ratio": 2.88},
            {"rule": "export", "family": None, "requested_min": 120, "estimate_min": None, "ratio": None}]
    low, high = runtime_warnings(rows)
    assert low.startswith("train (a) requests 40 min") and "below 1.5x" in low and "resources.train.runtime" in low
    assert high.startswith("train (b) requests 2880 min") and "above 10x" in high and "MaxTime" in high


def test_plan_cli_warns_about_the_old_48_h_train_request(plan_cli_with):
    proc = plan_cli_with(lambda config: config["resources"]["train"].update(runtime=2880))
    assert "morphcpt plan: warning: train (llama31_8b) requests 2880 min" in proc.stderr
    row = next(line for line in proc.stdout.splitlines() if line.startswith("train (llama31_8b)"))
    assert row.split()[2:5] == ["2880", "41.6", "69.28x"]
