"""Tables and plots: one family's scores over mode x step x benchmark, and the cross-family view.

`aggregate_family` reads result JSONs of `morphcpt eval` / the evaluate rule and writes
- a long CSV: family, mode, step, benchmark, format, metric, value, stderr, n
  (stderr: lm-eval's standard error of the mean over items);
- Markdown: one table per benchmark, rows mode x step, primary metrics as `value ± stderr`;
- PNG: primary metric vs step per mode for each benchmark and format; the base model is step 0
  of every mode's line; MCQ panels show the items' chance rate.
The family CSV also holds each trained mode's gain over vanilla at the same step, with a paired
stderr from the per-item scores (same items; falls back to sqrt(se^2 + se_vanilla^2) when a
result has no per-item scores, marked in `gain_stderr_kind`).
`compare_families` reads the family CSVs and writes each mode's score at the family's final
step, the base score and the gain over vanilla.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable

from morphcpt.errors import MorphcptError
from morphcpt.evaluation.scoring import GEN_METRICS, MCQ_METRICS, PRIMARY_METRIC

BASE_MODE = "base"
CSV_FIELDS = ("family", "mode", "step", "benchmark", "format", "metric", "value", "stderr", "n",
              "gain_over_vanilla", "gain_stderr", "gain_stderr_kind")
TABLE_METRICS = {"mcq": ("acc", "acc_norm", "acc_chance_corrected"), "gen": ("exact_match", "contains_match")}
COMPARE_FIELDS = ("family", "benchmark", "format", "metric", "mode", "step", "value", "stderr",
                  "base_value", "base_stderr", "gain_over_vanilla", "gain_stderr", "gain_stderr_kind")


def _atomic_write_text(path: str | Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _write_csv(path: str | Path, fields: Iterable[str], rows: list[dict[str, Any]]) -> None:
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(fields), lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    _atomic_write_text(path, buf.getvalue())


def _save_figure(fig: Any, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    os.replace(tmp, path)


def _fmt(value: float | None, stderr: float | None = None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if stderr is None or (isinstance(stderr, float) and math.isnan(stderr)):
        return f"{value:.3f}"
    return f"{value:.3f} ± {stderr:.3f}"


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
    if missing or "results" not in result:
        raise MorphcptError(f"{path}: result lacks provenance {missing} or results; rerun its evaluate job")
    per_item: dict[str, dict[str, dict[str, float]]] = defaultdict(dict)
    for rec in result.get("item_scores") or []:
        per_item[rec["task"]][rec["id"]] = rec
    rows = []
    for task, metrics in result["results"].items():
        fmt = task.rsplit("_", 1)[-1]
        if fmt not in ("mcq", "gen"):
            raise MorphcptError(f"{path}: unexpected task {task!r} (expected morphcpt_<benchmark>_mcq/gen)")
        n = result.get("n-samples", {}).get(task, {}).get("effective")
        for metric in (MCQ_METRICS if fmt == "mcq" else GEN_METRICS):
            key = f"{metric},none"
            if key not in metrics:
                raise MorphcptError(f"{path}: task {task} has no metric {metric}")
            rows.append({"family": prov["family"], "mode": prov["mode"], "step": int(prov["step"]),
                         "benchmark": prov["benchmark"], "format": fmt, "metric": metric,
                         "value": _float(metrics[key]), "stderr": _float(metrics.get(f"{metric}_stderr,none")),
                         "n": n,
                         "_items": ({i: float(rec[metric]) for i, rec in per_item[task].items()}
                                    if task in per_item else None)})
    return rows


def read_csv_rows(path: str | Path) -> list[dict[str, Any]]:
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        r["step"] = int(r["step"])
        for key in ("value", "stderr", "gain_over_vanilla", "gain_stderr"):
            r[key] = _float(r.get(key))
    return rows


def add_gains(rows: list[dict[str, Any]]) -> None:
    """Gain over vanilla at the same step for every other trained mode. With per-item scores in
    both results the stderr is paired (same items: sd of per-item differences / sqrt(n));
    otherwise sqrt(se^2 + se_vanilla^2), which overstates it."""
    index = {(r["mode"], r["step"], r["benchmark"], r["format"], r["metric"]): r for r in rows}
    for r in rows:
        r["gain_over_vanilla"] = r["gain_stderr"] = r["gain_stderr_kind"] = ""
        if r["mode"] in (BASE_MODE, "vanilla"):
            continue
        v = index.get(("vanilla", r["step"], r["benchmark"], r["format"], r["metric"]))
        if v is None:
            continue
        if r["_items"] is not None and v["_items"] is not None:
            if set(r["_items"]) != set(v["_items"]):
                raise MorphcptError(f"aggregate: {r['mode']} and vanilla at step {r['step']} scored different items "
                                    f"of {r['benchmark']} {r['format']}; re-evaluate with the same items and limit")
            diffs = [r["_items"][i] - v["_items"][i] for i in sorted(r["_items"])]
            n = len(diffs)
            gain = sum(diffs) / n
            var = sum((d - gain) ** 2 for d in diffs) / (n - 1) if n > 1 else math.nan
            r.update(gain_over_vanilla=gain, gain_stderr=math.sqrt(var / n), gain_stderr_kind="paired")
        else:
            r.update(gain_over_vanilla=r["value"] - v["value"],
                     gain_stderr=math.sqrt(r["stderr"] ** 2 + v["stderr"] ** 2), gain_stderr_kind="independent")


def _mode_key(mode: str) -> tuple:
    """base first, then vanilla (the reference arm), then the other modes by name."""
    return (mode != BASE_MODE, mode != "vanilla", mode)


def _sort_key(row: dict[str, Any]) -> tuple:
    return (row["benchmark"], row["format"], _mode_key(row["mode"]), row["step"], row["metric"])


# -- per family -----------------------------------------------------------------------------------
def aggregate_family(result_paths: list[str | Path], csv_path: str | Path, md_path: str | Path,
                     png_path: str | Path, family: str | None = None) -> list[dict[str, Any]]:
    if not result_paths:
        raise MorphcptError("aggregate: no result JSONs given")
    rows = [r for p in result_paths for r in result_rows(p)]
    families = {r["family"] for r in rows}
    if family is not None and families != {family}:
        raise MorphcptError(f"aggregate {family}: results of families {sorted(families)}")
    seen: dict[tuple, int] = {}
    for r in rows:
        key = (r["mode"], r["step"], r["benchmark"], r["format"], r["metric"])
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > 1:
            raise MorphcptError(f"aggregate: two results for {key}")
    rows.sort(key=_sort_key)
    add_gains(rows)
    _write_csv(csv_path, CSV_FIELDS, rows)
    _atomic_write_text(md_path, family_markdown(rows))
    plot_family(rows, png_path)
    return rows


def family_markdown(rows: list[dict[str, Any]]) -> str:
    family = rows[0]["family"]
    lines = [f"# Scores: {family}", "",
             "Mean over items ± standard error. MCQ: `acc` (tie-aware), `acc_norm` (per character), "
             "`acc_chance_corrected` (0 = chance, 1 = perfect). GEN: `exact_match` (primary), "
             "`contains_match`. The base model is mode `base`, step 0.", ""]
    by_bench: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_bench[r["benchmark"]].append(r)
    for bench, brows in by_bench.items():
        columns = [(fmt, m) for fmt in ("mcq", "gen") for m in TABLE_METRICS[fmt]
                   if any(r["format"] == fmt for r in brows)]
        cell = {(r["mode"], r["step"], r["format"], r["metric"]): r for r in brows}
        n_of = {fmt: max((r["n"] or 0) for r in brows if r["format"] == fmt) for fmt, _ in columns}
        lines += [f"## {bench}", "",
                  "| mode | step | " + " | ".join(f"{fmt.upper()} {m} (n={n_of[fmt]})" for fmt, m in columns) + " |",
                  "|---|---:|" + "---:|" * len(columns)]
        points = sorted({(r["mode"], r["step"]) for r in brows}, key=lambda p: (_mode_key(p[0]), p[1]))
        for mode, step in points:
            cells = [_fmt(cell[(mode, step, f, m)]["value"], cell[(mode, step, f, m)]["stderr"])
                     if (mode, step, f, m) in cell else "–" for f, m in columns]
            lines.append(f"| {mode} | {step} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def plot_family(rows: list[dict[str, Any]], png_path: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = sorted({(r["benchmark"], r["format"]) for r in rows})
    cols = min(3, len(panels))
    nrows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(5 * cols, 3.6 * nrows), squeeze=False)
    for ax, (bench, fmt) in zip(axes.flat, panels):
        metric = PRIMARY_METRIC[fmt]
        sel = [r for r in rows if r["benchmark"] == bench and r["format"] == fmt and r["metric"] == metric]
        base = [r for r in sel if r["mode"] == BASE_MODE]
        modes = sorted({r["mode"] for r in sel} - {BASE_MODE}, key=_mode_key)
        for mode in modes:
            pts = base + sorted((r for r in sel if r["mode"] == mode), key=lambda r: r["step"])
            ax.errorbar([r["step"] for r in pts], [r["value"] for r in pts],
                        yerr=[0 if math.isnan(r["stderr"]) else r["stderr"] for r in pts],
                        marker="o", capsize=3, label=mode)
        if not modes and base:
            ax.errorbar([0], [base[0]["value"]], yerr=[base[0]["stderr"]], marker="o", label=BASE_MODE)
        chance = [r["value"] for r in rows if r["benchmark"] == bench and r["format"] == fmt and r["metric"] == "chance"]
        if chance:
            ax.axhline(sum(chance) / len(chance), color="grey", linestyle=":", label="chance")
        ax.set_title(f"{bench} {fmt.upper()}")
        ax.set_xlabel("CPT step (0 = base model)")
        ax.set_ylabel(metric)
        ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle(f"{rows[0]['family']}: score vs step per tokenization mode")
    fig.tight_layout()
    _save_figure(fig, png_path)
    plt.close(fig)


# -- across families --------------------------------------------------------------------------------
def compare_families(csv_paths: list[str | Path], csv_path: str | Path, md_path: str | Path,
                     png_path: str | Path) -> list[dict[str, Any]]:
    if not csv_paths:
        raise MorphcptError("compare: no family reports given")
    rows = [r for p in csv_paths for r in read_csv_rows(p)]
    out = []
    index = {(r["family"], r["mode"], r["step"], r["benchmark"], r["format"], r["metric"]): r for r in rows}
    for family in sorted({r["family"] for r in rows}):
        fam_rows = [r for r in rows if r["family"] == family]
        trained = [r["step"] for r in fam_rows if r["mode"] != BASE_MODE]
        final = max(trained) if trained else 0
        modes = sorted({r["mode"] for r in fam_rows} - {BASE_MODE})
        for bench, fmt in sorted({(r["benchmark"], r["format"]) for r in fam_rows}):
            for metric in TABLE_METRICS[fmt]:
                base = index.get((family, BASE_MODE, 0, bench, fmt, metric))
                vanilla = index.get((family, "vanilla", final, bench, fmt, metric))
                for mode in modes:
                    r = index.get((family, mode, final, bench, fmt, metric))
                    if r is None:
                        raise MorphcptError(f"compare: {family} has no {mode} step {final} score for {bench} {fmt} {metric}")
                    gain, gain_se, kind = math.nan, math.nan, ""
                    if mode == "vanilla" and vanilla is not None:
                        gain, gain_se, kind = 0.0, 0.0, "reference"
                    elif not math.isnan(r.get("gain_over_vanilla", math.nan)):
                        gain, gain_se, kind = r["gain_over_vanilla"], r["gain_stderr"], r.get("gain_stderr_kind", "")
                    elif vanilla is not None:
                        gain = r["value"] - vanilla["value"]
                        gain_se = math.sqrt(r["stderr"] ** 2 + vanilla["stderr"] ** 2)
                        kind = "independent"
                    out.append({"family": family, "benchmark": bench, "format": fmt, "metric": metric,
                                "mode": mode, "step": final, "value": r["value"], "stderr": r["stderr"],
                                "base_value": base["value"] if base else math.nan,
                                "base_stderr": base["stderr"] if base else math.nan,
                                "gain_over_vanilla": gain, "gain_stderr": gain_se, "gain_stderr_kind": kind})
    if not out:
        raise MorphcptError("compare: the family reports hold no trained-mode scores")
    _write_csv(csv_path, COMPARE_FIELDS, out)
    _atomic_write_text(md_path, comparison_markdown(out))
    plot_comparison(out, png_path)
    return out


def comparison_markdown(out: list[dict[str, Any]]) -> str:
    families = sorted({r["family"] for r in out})
    modes = sorted({r["mode"] for r in out}, key=lambda m: (m != "vanilla", m))
    lines = ["# Cross-family comparison", "",
             "Each family at its final CPT step. Cells: score ± stderr, and in brackets the gain over "
             "vanilla ± its stderr (paired over the same items where per-item scores exist; see the CSV's "
             "gain_stderr_kind). `base`: the model before CPT.", "",
             "| benchmark | format | metric | " + " | ".join(
                 f"{fam} base" for fam in families) + " | " + " | ".join(
                 f"{fam} {mode}" for fam in families for mode in modes) + " |",
             "|---|---|---|" + "---:|" * (len(families) + len(families) * len(modes))]
    cell = {(r["family"], r["mode"], r["benchmark"], r["format"], r["metric"]): r for r in out}
    for bench, fmt, metric in sorted({(r["benchmark"], r["format"], r["metric"]) for r in out}):
        bases = []
        for fam in families:
            any_row = next((r for r in out if r["family"] == fam and r["benchmark"] == bench
                            and r["format"] == fmt and r["metric"] == metric), None)
            bases.append(_fmt(any_row["base_value"], any_row["base_stderr"]) if any_row else "–")
        cells = []
        for fam in families:
            for mode in modes:
                r = cell.get((fam, mode, bench, fmt, metric))
                if r is None:
                    cells.append("–")
                elif mode == "vanilla" or math.isnan(r["gain_over_vanilla"]):
                    cells.append(_fmt(r["value"], r["stderr"]))
                else:
                    cells.append(f"{_fmt(r['value'], r['stderr'])} ({r['gain_over_vanilla']:+.3f} ± {r['gain_stderr']:.3f})")
        lines.append(f"| {bench} | {fmt.upper()} | {metric} | " + " | ".join(bases + cells) + " |")
    steps = ", ".join(f"{fam}: step {next(r['step'] for r in out if r['family'] == fam)}" for fam in families)
    lines += ["", f"Final steps: {steps}.", ""]
    return "\n".join(lines)


def plot_comparison(out: list[dict[str, Any]], png_path: str | Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    primary = [r for r in out if r["metric"] == PRIMARY_METRIC[r["format"]] and r["mode"] != "vanilla"]
    panels = sorted({(r["benchmark"], r["format"]) for r in out})
    families = sorted({r["family"] for r in out})
    modes = sorted({r["mode"] for r in out} - {"vanilla"})
    cols = min(3, len(panels))
    nrows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(5 * cols, 3.6 * nrows), squeeze=False)
    width = 0.8 / max(len(modes), 1)
    for ax, (bench, fmt) in zip(axes.flat, panels):
        for j, mode in enumerate(modes):
            vals, errs = [], []
            for fam in families:
                r = next((x for x in primary if x["family"] == fam and x["mode"] == mode
                          and x["benchmark"] == bench and x["format"] == fmt), None)
                vals.append(r["gain_over_vanilla"] if r else math.nan)
                errs.append(r["gain_stderr"] if r else 0.0)
            xs = [i + (j - (len(modes) - 1) / 2) * width for i in range(len(families))]
            ax.bar(xs, vals, width=width, yerr=[0 if math.isnan(e) else e for e in errs], capsize=3, label=mode)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xticks(range(len(families)))
        ax.set_xticklabels(families, fontsize=8)
        ax.set_title(f"{bench} {fmt.upper()}")
        ax.set_ylabel(f"{PRIMARY_METRIC[fmt]} gain over vanilla")
        if modes:
            ax.legend(fontsize=8)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle("Gain over vanilla at the final CPT step, per family")
    fig.tight_layout()
    _save_figure(fig, png_path)
    plt.close(fig)


def aggregate_stage(smk: Any) -> None:
    aggregate_family(list(smk.input.results), smk.output.csv, smk.output.md, smk.output.plot,
                     family=smk.wildcards.family)


def compare_stage(smk: Any) -> None:
    compare_families(list(smk.input.reports), smk.output.csv, smk.output.md, smk.output.plot)
