"""One family's scores over mode x step x benchmark, and the cross-family view: the numbers.

`aggregate_family` reads the result JSONs of the evaluate rule / `morphcpt eval` (their `summary`:
per format the micro and macro average, every subtask and every question type, each metric as value
and stderr with n) and writes
- a long CSV: family, mode, step, benchmark, format, group (`micro`, `macro`, `subtask:<name>` or
  `qtype:<name>`), metric, value, stderr, n, n_shot, the paired delta from the base model and the
  paired gain over vanilla at the same step, each with its stderr;
- Markdown (`report_tables.family_markdown`) and PNG (`report_plots.plot_family`).
Paired stderrs come from the per-item scores (same items: sd of per-item differences / sqrt(n));
the macro delta is the mean of the subtasks' paired deltas (stderr sqrt(sum se^2)/k). Without
per-item scores a delta falls back to sqrt(se^2 + se_ref^2), marked `independent`.
`compare_families` reads the family CSVs and writes each family and mode at its final step with the
base score and both deltas (CSV), the main table (`report_tables.comparison_markdown`) and a plot of
absolute scores (`report_plots.plot_comparison`).
"""

from __future__ import annotations

import csv
import json
import math
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable

from morphcpt.errors import MorphcptError
from morphcpt.fileio import write_text_atomic
from morphcpt.evaluation.report_plots import BASE_MODE, REFERENCE_MODE, plot_comparison, plot_family
from morphcpt.evaluation.report_plots import mode_key as _mode_key
from morphcpt.evaluation.report_tables import SCOPES, TABLE_METRICS, comparison_markdown, family_markdown
from morphcpt.evaluation.scoring import GEN_METRICS, MCQ_METRICS

CSV_FIELDS = ("family", "mode", "step", "benchmark", "format", "group", "metric", "value", "stderr", "n",
              "n_shot", "delta_base", "delta_base_stderr", "gain_over_vanilla", "gain_stderr", "gain_stderr_kind")
COMPARE_FIELDS = ("family", "benchmark", "format", "group", "metric", "mode", "step", "n", "n_shot", "value", "stderr",
                  "base_value", "base_stderr", "delta_base", "delta_base_stderr",
                  "gain_over_vanilla", "gain_stderr", "gain_stderr_kind")


def _write_csv(path: str | Path, fields: Iterable[str], rows: list[dict[str, Any]]) -> None:
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(fields), lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, buf.getvalue())


def _float(x: Any) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


# -- reading result JSONs ----------------------------------------------------------------------------
def result_rows(path: str | Path) -> list[dict[str, Any]]:
    """Long rows of one result JSON; family/mode/step/benchmark come from its provenance."""
    path = Path(path)
    try:
        result = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise MorphcptError(f"{path}: not a readable result JSON ({exc}); rerun its evaluate job") from None
    prov = result.get("provenance") or {}
    missing = [k for k in ("family", "mode", "step", "benchmark") if k not in prov]
    if missing or "summary" not in result:
        raise MorphcptError(f"{path}: result lacks provenance {missing} or summary; rerun its evaluate job")
    per_item: dict[str, dict[str, dict[str, dict]]] = defaultdict(lambda: defaultdict(dict))
    per_type: dict[str, dict[str, dict[str, dict]]] = defaultdict(lambda: defaultdict(dict))
    for rec in result.get("item_scores") or []:
        per_item[rec["format"]][rec["subtask"]][rec["id"]] = rec
        if rec.get("question_type"):
            per_type[rec["format"]][rec["question_type"]][rec["id"]] = rec
    rows = []
    for fmt, s in result["summary"].items():
        if fmt not in ("mcq", "gen"):
            raise MorphcptError(f"{path}: unexpected format {fmt!r} in summary")
        items = per_item.get(fmt)
        groups = [(scope, s[scope], s["n"]) for scope in SCOPES]
        groups += [(f"subtask:{name}", cell, cell["n"]) for name, cell in s["subtasks"].items()]
        groups += [(f"qtype:{name}", cell, cell["n"]) for name, cell in (s.get("question_types") or {}).items()]
        for group, cells, n in groups:
            for metric in (MCQ_METRICS if fmt == "mcq" else GEN_METRICS):
                if metric not in cells:
                    raise MorphcptError(f"{path}: {fmt} {group} has no metric {metric}")
                if items is None:
                    scores = None
                elif group.startswith("subtask:"):
                    scores = {i: float(r[metric]) for i, r in items.get(group[8:], {}).items()}
                elif group.startswith("qtype:"):
                    scores = {i: float(r[metric]) for i, r in per_type[fmt].get(group[6:], {}).items()}
                else:  # micro and macro: per subtask, so the macro delta can average subtask deltas
                    scores = {sub: {i: float(r[metric]) for i, r in recs.items()} for sub, recs in items.items()}
                rows.append({"family": prov["family"], "mode": prov["mode"], "step": int(prov["step"]),
                             "benchmark": prov["benchmark"], "format": fmt, "group": group, "metric": metric,
                             "value": _float(cells[metric]["value"]), "stderr": _float(cells[metric]["stderr"]),
                             "n": n, "n_shot": s["n_shot"]["total"], "_items": scores})
    return rows


def read_csv_rows(path: str | Path) -> list[dict[str, Any]]:
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        r["step"] = int(r["step"])
        for key in ("value", "stderr", "delta_base", "delta_base_stderr", "gain_over_vanilla", "gain_stderr"):
            r[key] = _float(r.get(key))
    return rows


def _paired(a: dict[str, float], b: dict[str, float], what: str) -> tuple[float, float]:
    if set(a) != set(b):
        raise MorphcptError(f"aggregate: {what} scored different items; re-evaluate with the same items, "
                            "limit and num_fewshot")
    diffs = [a[i] - b[i] for i in sorted(a)]
    n = len(diffs)
    mean = sum(diffs) / n
    var = sum((d - mean) ** 2 for d in diffs) / (n - 1) if n > 1 else math.nan
    return mean, math.sqrt(var / n)


def paired_delta(r: dict[str, Any], ref: dict[str, Any], what: str) -> tuple[float, float, str]:
    """r - ref with its stderr: paired over the same items where both have per-item scores."""
    if r["_items"] is None or ref["_items"] is None:
        return r["value"] - ref["value"], math.sqrt(r["stderr"] ** 2 + ref["stderr"] ** 2), "independent"
    if not r["group"] in SCOPES:
        return (*_paired(r["_items"], ref["_items"], what), "paired")
    if set(r["_items"]) != set(ref["_items"]):
        raise MorphcptError(f"aggregate: {what} scored different subtasks; re-evaluate with the same items")
    if r["group"] == "micro":
        flat = lambda d: {f"{s}/{i}": v for s, sub in d.items() for i, v in sub.items()}  # noqa: E731
        return (*_paired(flat(r["_items"]), flat(ref["_items"]), what), "paired")
    parts = [_paired(r["_items"][s], ref["_items"][s], what) for s in sorted(r["_items"])]
    k = len(parts)
    return (sum(p[0] for p in parts) / k, math.sqrt(sum(p[1] ** 2 for p in parts)) / k, "paired")


def add_deltas(rows: list[dict[str, Any]]) -> None:
    """Paired delta from the base model (every trained point) and gain over vanilla at the same step
    (every other trained mode)."""
    index = {(r["mode"], r["step"], r["benchmark"], r["format"], r["group"], r["metric"]): r for r in rows}
    for r in rows:
        r.update(delta_base="", delta_base_stderr="", gain_over_vanilla="", gain_stderr="", gain_stderr_kind="")
        if r["mode"] == BASE_MODE:
            continue
        key = (r["benchmark"], r["format"], r["group"], r["metric"])
        what = f"{r['mode']} step {r['step']} and %s on {r['benchmark']} {r['format']}"
        base = index.get((BASE_MODE, 0, *key))
        if base is not None:
            r["delta_base"], r["delta_base_stderr"], _ = paired_delta(r, base, what % "base")
        v = index.get((REFERENCE_MODE, r["step"], *key))
        if v is not None and r["mode"] != REFERENCE_MODE:
            r["gain_over_vanilla"], r["gain_stderr"], r["gain_stderr_kind"] = paired_delta(r, v, what % "vanilla")


def _group_key(group: str) -> tuple:
    return (group not in SCOPES, SCOPES.index(group) if group in SCOPES else 0, group)


def _sort_key(row: dict[str, Any]) -> tuple:
    return (row["benchmark"], row["format"], _mode_key(row["mode"]), row["step"], _group_key(row["group"]),
            row["metric"])


# -- per family -----------------------------------------------------------------------------------
def aggregate_family(result_paths: list[str | Path], csv_path: str | Path, md_path: str | Path,
                     png_path: str | Path, family: str | None = None) -> list[dict[str, Any]]:
    if not result_paths:
        raise MorphcptError("aggregate: no result JSONs given")
    rows = [r for p in result_paths for r in result_rows(p)]
    families = {r["family"] for r in rows}
    if family is not None and families != {family}:
        raise MorphcptError(f"aggregate {family}: results of families {sorted(families)}")
    seen: set[tuple] = set()
    for r in rows:
        key = (r["mode"], r["step"], r["benchmark"], r["format"], r["group"], r["metric"])
        if key in seen:
            raise MorphcptError(f"aggregate: two results for {key}")
        seen.add(key)
    rows.sort(key=_sort_key)
    add_deltas(rows)
    _write_csv(csv_path, CSV_FIELDS, rows)
    write_text_atomic(md_path, family_markdown(rows))
    plot_family(rows, png_path)
    return rows


# -- across families --------------------------------------------------------------------------------
def compare_families(csv_paths: list[str | Path], csv_path: str | Path, md_path: str | Path,
                     png_path: str | Path) -> list[dict[str, Any]]:
    if not csv_paths:
        raise MorphcptError("compare: no family reports given")
    rows = [r for p in csv_paths for r in read_csv_rows(p) if r["group"] in SCOPES]
    out = []
    index = {(r["family"], r["mode"], r["step"], r["benchmark"], r["format"], r["group"], r["metric"]): r
             for r in rows}
    for family in sorted({r["family"] for r in rows}):
        fam_rows = [r for r in rows if r["family"] == family]
        trained = [r["step"] for r in fam_rows if r["mode"] != BASE_MODE]
        final = max(trained) if trained else 0
        modes = sorted({r["mode"] for r in fam_rows} - {BASE_MODE}, key=_mode_key)
        for bench, fmt in sorted({(r["benchmark"], r["format"]) for r in fam_rows}):
            for group in SCOPES:
                for metric in TABLE_METRICS[fmt]:
                    base = index.get((family, BASE_MODE, 0, bench, fmt, group, metric))
                    for mode in modes:
                        r = index.get((family, mode, final, bench, fmt, group, metric))
                        if r is None:
                            raise MorphcptError(f"compare: {family} has no {mode} step {final} score for "
                                                f"{bench} {fmt} {group} {metric}")
                        gain, gain_se, kind = r["gain_over_vanilla"], r["gain_stderr"], r.get("gain_stderr_kind", "")
                        if mode == REFERENCE_MODE:
                            gain, gain_se, kind = 0.0, 0.0, "reference"
                        out.append({"family": family, "benchmark": bench, "format": fmt, "group": group,
                                    "metric": metric, "mode": mode, "step": final, "n": r.get("n", ""),
                                    "n_shot": r.get("n_shot", ""),
                                    "value": r["value"], "stderr": r["stderr"],
                                    "base_value": base["value"] if base else math.nan,
                                    "base_stderr": base["stderr"] if base else math.nan,
                                    "delta_base": r["delta_base"], "delta_base_stderr": r["delta_base_stderr"],
                                    "gain_over_vanilla": gain, "gain_stderr": gain_se, "gain_stderr_kind": kind})
    if not out:
        raise MorphcptError("compare: the family reports hold no trained-mode scores")
    chance = defaultdict(list)
    for r in rows:
        if r["metric"] == "chance" and r["group"] == "micro":
            chance[(r["benchmark"], r["format"])].append(r["value"])
    _write_csv(csv_path, COMPARE_FIELDS, out)
    chance_level = {k: sum(v) / len(v) for k, v in chance.items()}
    write_text_atomic(md_path, comparison_markdown(out, chance_level))
    plot_comparison(out, png_path, chance_level)
    return out


def aggregate_stage(smk: Any) -> None:
    aggregate_family(list(smk.input.results), smk.output.csv, smk.output.md, smk.output.plot,
                     family=smk.wildcards.family)


def compare_stage(smk: Any) -> None:
    compare_families(list(smk.input.reports), smk.output.csv, smk.output.md, smk.output.plot)
