"""aggregate (per family) and compare (across families): tables with standard errors, plots."""

from __future__ import annotations

import csv
import json
import math

import pytest

from benchmark_fixtures import fake_score as score
from benchmark_fixtures import write_fake_result as write_result
from morphcpt.errors import MorphcptError
from morphcpt.evaluation.report import aggregate_family, compare_families, read_csv_rows

MODES = ("vanilla", "stochastok", "patok")
STEPS = (15, 30)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def family_reports(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("family_reports")
    reports = []
    for family in ("llama_x", "gemma_x"):
        paths = [write_result(tmp_path / f"{family}-base-{b}.json", family, "base", 0, b)
                 for b in ("pacute", "cute")]
        paths += [write_result(tmp_path / f"{family}-{m}-{s}-{b}.json", family, m, s, b)
                  for m in MODES for s in STEPS for b in ("pacute", "cute")]
        out = [tmp_path / family / n for n in ("scores.csv", "scores.md", "scores.png")]
        aggregate_family(paths, *out, family=family)
        reports.append(out)
    return reports


def test_aggregate_table_has_every_point_with_stderr(family_reports):
    csv_path, md_path, png_path = family_reports[0]
    rows = read_csv_rows(csv_path)
    # (base + 3 modes x 2 steps) x 2 benchmarks x (micro, macro, 2 subtasks) x (4 MCQ + 4 GEN metrics)
    assert len(rows) == 7 * 2 * 4 * 8
    for r in rows:
        if r["metric"] in ("acc", "normalized_match"):
            assert r["value"] == pytest.approx(score("llama_x", r["mode"], r["step"], r["benchmark"], r["format"]))
            assert r["stderr"] > 0 and r["n_shot"] == "3"
            if r["mode"] != "base":
                base = score("llama_x", "base", 0, r["benchmark"], r["format"])
                assert r["delta_base"] == pytest.approx(r["value"] - base)
                assert r["delta_base_stderr"] > 0
    assert {r["group"] for r in rows} == {"micro", "macro", "subtask:a", "subtask:b"}
    md = md_path.read_text()
    assert "## pacute MCQ (3-shot, n=40, chance 0.250)" in md and "## cute GEN (3-shot, n=40)" in md
    assert "| base | 0 |" in md and "±" in md and "## Protocol" in md
    assert "normalized_match macro" in md and "Δ base (micro)" in md
    # per subtask: n and chance beside one value per point
    assert "| subtask | n | chance | base 0 | vanilla 15 |" in md and "| a | 20 | 0.250 | 0.306 |" in md
    assert "Holm's correction over the" in md and "one standard error" in md
    assert png_path.read_bytes()[:8] == PNG_MAGIC


def test_compare_gains_over_vanilla(family_reports, tmp_path):
    out = [tmp_path / "report" / n for n in ("comparison.csv", "comparison.md", "comparison.png")]
    compare_families([r[0] for r in family_reports], *out)
    with open(out[0]) as fh:
        rows = list(csv.DictReader(fh))
    assert {r["family"] for r in rows} == {"llama_x", "gemma_x"}
    assert {r["group"] for r in rows} == {"micro", "macro"}
    for r in rows:
        if r["metric"] in ("acc", "normalized_match"):
            fam, mode, bench, fmt = r["family"], r["mode"], r["benchmark"], r["format"]
            assert int(r["step"]) == 30
            expected = score(fam, mode, 30, bench, fmt) - score(fam, "vanilla", 30, bench, fmt)
            assert float(r["gain_over_vanilla"]) == pytest.approx(expected, abs=1e-9)
            assert float(r["base_value"]) == pytest.approx(score(fam, "base", 0, bench, fmt))
            if mode != "vanilla":
                assert float(r["gain_stderr"]) > 0
    md = out[1].read_text()
    assert "gemma_x patok" in md and "llama_x stochastok" in md and "## Protocol" in md
    main = md.split("## Main table")[1].split("\n\n")[1].splitlines()
    header = [c.strip() for c in main[0].strip("|").split("|")]
    assert header[:5] == ["benchmark", "format", "n", "n-shot", "chance"] and "gemma_x patok Δ vanilla" in header
    pacute_mcq = dict(zip(header, (c.strip() for c in next(l for l in main if l.startswith("| pacute | MCQ")).strip("|").split("|"))))
    # one number per cell; the fake stderrs (~0.08) make +0.070 not significant
    assert pacute_mcq["gemma_x patok"] == f"{score('gemma_x', 'patok', 30, 'pacute', 'mcq'):.3f}"
    assert pacute_mcq["gemma_x patok Δ vanilla"] == "+0.070" and pacute_mcq["chance"] == "0.250"
    assert pacute_mcq["n"] == "40" and "±" not in next(l for l in main if l.startswith("| pacute | MCQ"))
    assert "Holm's correction over the 16 Δ vanilla tests" in md  # 2 families x 2 modes x 4 benchmark formats
    assert out[2].read_bytes()[:8] == PNG_MAGIC


def test_aggregate_rejects_duplicates_and_missing_provenance(tmp_path):
    a = write_result(tmp_path / "a.json", "f", "base", 0, "cute")
    b = write_result(tmp_path / "b.json", "f", "base", 0, "cute")
    outs = [tmp_path / n for n in ("s.csv", "s.md", "s.png")]
    with pytest.raises(MorphcptError, match="two results"):
        aggregate_family([a, b], *outs)
    data = json.loads(a.read_text())
    del data["provenance"]["step"]
    a.write_text(json.dumps(data))
    with pytest.raises(MorphcptError, match=r"a\.json: result lacks provenance \['step'\]"):
        aggregate_family([a], *outs)
    assert not outs[0].exists()


def test_compare_fails_on_missing_final_step(tmp_path, family_reports):
    lines = [line for line in family_reports[0][0].read_text().splitlines() if not line.startswith("llama_x,patok,30,")]
    csv_path = tmp_path / "scores.csv"
    csv_path.write_text("\n".join(lines) + "\n")
    with pytest.raises(MorphcptError, match="no patok step 30"):
        compare_families([csv_path], *[tmp_path / n for n in ("c.csv", "c.md", "c.png")])


def _with_items(path, correct_ids, all_ids):
    """Per-item GEN scores (subtask a: the first half of the ids, b: the rest) and the summary they give."""
    import statistics

    data = json.loads(path.read_text())
    half = len(all_ids) // 2
    sub = {i: ("a" if k < half else "b") for k, i in enumerate(all_ids)}
    data["item_scores"] = [{"id": i, "format": "gen", "subtask": sub[i], "task": f"t_{sub[i]}",
                            **{m: float(i in correct_ids) for m in ("normalized_match", "exact_match")},
                            "prefix_match": 0.0, "contains_match": 0.0} for i in all_ids]

    def cell(ids):
        xs = [float(i in correct_ids) for i in ids]
        return {"value": sum(xs) / len(xs), "stderr": statistics.stdev(xs) / math.sqrt(len(xs))}

    gen = data["summary"]["gen"]
    for m in ("normalized_match", "exact_match"):
        gen["micro"][m] = cell(all_ids)
        for s in ("a", "b"):
            gen["subtasks"][s][m] = cell([i for i in all_ids if sub[i] == s])
        gen["macro"][m] = {"value": (gen["subtasks"]["a"][m]["value"] + gen["subtasks"]["b"][m]["value"]) / 2,
                           "stderr": math.nan}
    data["summary"] = {"gen": gen}
    path.write_text(json.dumps(data))
    return path


def test_gain_stderr_is_paired_over_the_same_items(tmp_path):
    import statistics

    ids = [f"q{i:02d}" for i in range(40)]
    vanilla_ok, patok_ok = set(ids[:10]), set(ids[:10] + ids[20:26])   # patok: 6 more right, none lost
    paths = [_with_items(write_result(tmp_path / "b.json", "f", "base", 0, "cute"), set(), ids),
             _with_items(write_result(tmp_path / "v.json", "f", "vanilla", 30, "cute"), vanilla_ok, ids),
             _with_items(write_result(tmp_path / "p.json", "f", "patok", 30, "cute"), patok_ok, ids)]
    rows = aggregate_family(paths, *[tmp_path / n for n in ("s.csv", "s.md", "s.png")], family="f")
    row = next(r for r in rows if r["mode"] == "patok" and r["metric"] == "exact_match" and r["group"] == "micro")
    diffs = [float(i in patok_ok) - float(i in vanilla_ok) for i in ids]
    assert row["gain_over_vanilla"] == pytest.approx(6 / 40)
    assert row["gain_stderr"] == pytest.approx(statistics.stdev(diffs) / math.sqrt(40))
    assert row["gain_stderr_kind"] == "paired"
    # the paired stderr is smaller than treating the runs as independent
    assert row["gain_stderr"] < math.sqrt(row["stderr"] ** 2 + next(
        r for r in rows if r["mode"] == "vanilla" and r["metric"] == "exact_match" and r["group"] == "micro")["stderr"] ** 2)
    # macro: the mean of the subtasks' paired gains (a: +0, b: +6/20), stderr sqrt(sum se^2)/2
    macro = next(r for r in rows if r["mode"] == "patok" and r["metric"] == "exact_match" and r["group"] == "macro")
    assert macro["gain_over_vanilla"] == pytest.approx((0 + 6 / 20) / 2)
    sub_b = next(r for r in rows if r["mode"] == "patok" and r["metric"] == "exact_match" and r["group"] == "subtask:b")
    assert sub_b["gain_over_vanilla"] == pytest.approx(6 / 20) and sub_b["gain_stderr_kind"] == "paired"
    assert macro["gain_stderr"] == pytest.approx(sub_b["gain_stderr"] / 2)  # subtask a: no difference, se 0
    # delta from base, paired: patok got 16 right, base none
    assert row["delta_base"] == pytest.approx(16 / 40)
    out = compare_families([tmp_path / "s.csv"], *[tmp_path / n for n in ("c.csv", "c.md", "c.png")])
    cmp_row = next(r for r in out if r["mode"] == "patok" and r["metric"] == "exact_match" and r["group"] == "micro")
    assert cmp_row["gain_stderr"] == pytest.approx(row["gain_stderr"]) and cmp_row["gain_stderr_kind"] == "paired"

    _with_items(paths[2], patok_ok, ids[:-1])
    with pytest.raises(MorphcptError, match="scored different items"):
        aggregate_family(paths, *[tmp_path / n for n in ("t.csv", "t.md", "t.png")], family="f")


def test_holm_correction_and_p_values():
    from morphcpt.evaluation.report_tables import holm, p_value

    assert p_value(0.1, 0.05) == pytest.approx(0.0455, abs=1e-3)
    assert p_value(0.0, 0.0) is None and p_value(float("nan"), 0.1) is None
    # 3 tests: the smallest is compared with 0.05/3, then 0.05/2, then 0.05
    significant, m = holm({"a": 0.01, "b": 0.02, "c": 0.04, "d": None})
    assert m == 3 and significant == {"a", "b", "c"}
    significant, m = holm({"a": 0.03, "b": 0.04})
    assert m == 2 and significant == set()  # 0.03 > 0.05/2: the step-down stops at once


def test_all_zero_cells_say_so():
    from morphcpt.evaluation.report_tables import fmt

    assert fmt(0.0, 0.0) == "0.000 (every item 0)" and fmt(0.25, 0.0) == "0.250 ± 0.000"
    assert fmt(0.4, 0.05) == "0.400 ± 0.050" and fmt(float("nan")) == "–"


def test_plot_y_range_follows_the_data():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from morphcpt.evaluation.report_plots import fit_ylim

    fig, ax = plt.subplots()
    fit_ylim(ax, [0.41, 0.44], [0.01, 0.01], [0.25])
    lo, hi = ax.get_ylim()
    assert 0.2 < lo < 0.25 and 0.45 < hi < 0.5  # a few points stay visible, chance in range
    plt.close(fig)
