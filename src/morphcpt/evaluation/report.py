"""Tables and plots: one family's scores over mode x step x benchmark, and the cross-family view.

`aggregate_family` reads the result JSONs of the evaluate rule / `morphcpt eval` (their `summary`:
per format the micro and macro average and every subtask, each metric as value ± stderr with n)
and writes
- a long CSV: family, mode, step, benchmark, format, group (`micro`, `macro` or `subtask:<name>`),
  metric, value, stderr, n, n_shot, the paired delta from the base model and the paired gain over
  vanilla at the same step, each with its stderr;
- Markdown: the protocol, then per benchmark and format a summary table (micro and macro primary
  metric, deltas, secondary metrics) and a per-subtask table (hierarchical levels, PACUTE
  categories, CUTE tasks), every cell `value ± stderr`, n and n-shot in the headers;
- PNG: primary metric (micro) vs step per mode, one y-scale (0-1) for every panel, MCQ chance lines,
  modes offset on x with their own markers so identical lines stay visible.
Paired stderrs come from the per-item scores (same items: sd of per-item differences / sqrt(n));
the macro delta is the mean of the subtasks' paired deltas (stderr sqrt(sum se^2)/k). Without
per-item scores a delta falls back to sqrt(se^2 + se_ref^2), marked `independent`.
`compare_families` reads the family CSVs and writes each family and mode at its final step with the
base score and both deltas, and a bar plot of absolute scores on one y-scale.
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
from morphcpt.evaluation.scoring import GEN_METRICS, MCQ_METRICS, NORMALISERS, PRIMARY_METRIC

BASE_MODE = "base"
REFERENCE_MODE = "vanilla"
SCOPES = ("micro", "macro")
CSV_FIELDS = ("family", "mode", "step", "benchmark", "format", "group", "metric", "value", "stderr", "n",
              "n_shot", "delta_base", "delta_base_stderr", "gain_over_vanilla", "gain_stderr", "gain_stderr_kind")
TABLE_METRICS = {"mcq": ("acc", "acc_norm", "acc_chance_corrected"),
                 "gen": ("normalized_match", "exact_match", "contains_match")}
COMPARE_FIELDS = ("family", "benchmark", "format", "group", "metric", "mode", "step", "n_shot", "value", "stderr",
                  "base_value", "base_stderr", "delta_base", "delta_base_stderr",
                  "gain_over_vanilla", "gain_stderr", "gain_stderr_kind")
MARKERS = ("o", "s", "^", "D", "v", "P", "X")


def protocol_markdown() -> str:
    """How the numbers were made, for every table (a reviewer's first question)."""
    normalisers = "\n".join(f"  - `{name}`: {doc}" for name, (doc, _) in NORMALISERS.items())
    return "\n".join([
        "## Protocol", "",
        "- **Prompt**: the item's prompt (PACUTE and hierarchical MCQ prompts list their options, in scoring "
        "order), then `Answer:` (LangGame and addition prompts end in their own `Answer:` / `=`), a space and "
        "the answer, ended by a newline. Base models, no chat template, BOS first.",
        "- **n-shot**: `evaluation.num_fewshot` worked examples per prompt in the same format, drawn with the seed "
        "from the same subtask (level, category or task) and never scored. CUTE prompts already hold 4 worked "
        "examples: nothing is added, n-shot 4. Every table states n-shot.",
        "- **MCQ**: log-likelihood of each option written ` option\\n`: the terminator is part of the option, so "
        "no option wins or loses by being a token prefix of another (the result JSON counts such items per "
        "benchmark). `acc` (primary; ties give 1/k), `acc_norm` (per character), `acc_chance_corrected`.",
        "- **GEN**: greedy, up to the newline, at most the longest gold's tokens + 5. The answer is the first line "
        "without surrounding whitespace and one pair of quotes. `normalized_match` (primary) compares after the "
        "item's normalisers (both sides); `exact_match` is strict; `contains_match` looks for the gold in the line.",
        "- **Normalisers** (chosen per item from benchmark, subtask and gold; case and diacritics kept where the "
        "task is about them):", normalisers,
        "- **Averages**: `micro` = all items equally (lm-eval group, pooled stderr); `macro` = subtasks equally "
        "(stderr sqrt(sum se²)/k). Δ base and gain over vanilla are paired over the same items.",
        "- **Differs from the authors' protocols**: pacute-bench and CUTE score their own prompts with their own "
        "runners; here options end with a terminator, answers are normalised, few-shot examples come from the "
        "same subtask, and dtype is bf16 on GPU (fp32 on CPU) for base and exported models alike. Compare numbers "
        "across models of this table, not with published ones.", ""])


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


def _isnan(x: Any) -> bool:
    return x is None or x == "" or (isinstance(x, float) and math.isnan(x))


def _fmt(value: float | None, stderr: float | None = None, signed: bool = False) -> str:
    if _isnan(value):
        return "–"
    text = f"{value:+.3f}" if signed else f"{value:.3f}"
    return text if _isnan(stderr) else f"{text} ± {stderr:.3f}"


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
    for rec in result.get("item_scores") or []:
        per_item[rec["format"]][rec["subtask"]][rec["id"]] = rec
    rows = []
    for fmt, s in result["summary"].items():
        if fmt not in ("mcq", "gen"):
            raise MorphcptError(f"{path}: unexpected format {fmt!r} in summary")
        items = per_item.get(fmt)
        groups = [(scope, s[scope], s["n"]) for scope in SCOPES]
        groups += [(f"subtask:{name}", cell, cell["n"]) for name, cell in s["subtasks"].items()]
        for group, cells, n in groups:
            for metric in (MCQ_METRICS if fmt == "mcq" else GEN_METRICS):
                if metric not in cells:
                    raise MorphcptError(f"{path}: {fmt} {group} has no metric {metric}")
                if items is None:
                    scores = None
                elif group.startswith("subtask:"):
                    scores = {i: float(r[metric]) for i, r in items.get(group[8:], {}).items()}
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


def _mode_key(mode: str) -> tuple:
    """base first, then vanilla (the reference arm), then the other modes by name."""
    return (mode != BASE_MODE, mode != REFERENCE_MODE, mode)


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
    _atomic_write_text(md_path, family_markdown(rows))
    plot_family(rows, png_path)
    return rows


def _points(rows: list[dict[str, Any]]) -> list[tuple[str, int]]:
    return sorted({(r["mode"], r["step"]) for r in rows}, key=lambda p: (_mode_key(p[0]), p[1]))


def family_markdown(rows: list[dict[str, Any]]) -> str:
    family = rows[0]["family"]
    lines = [f"# Scores: {family}", "",
             "Mean over items ± standard error. The base model is mode `base`, step 0. Δ base: paired change "
             "from the base model; Δ vanilla: paired gain over vanilla at the same step.", "",
             protocol_markdown()]
    by_bench: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in rows:
        by_bench[(r["benchmark"], r["format"])].append(r)
    for (bench, fmt), brows in sorted(by_bench.items()):
        primary = PRIMARY_METRIC[fmt]
        cell = {(r["mode"], r["step"], r["group"], r["metric"]): r for r in brows}
        micro = [r for r in brows if r["group"] == "micro"]
        n, n_shot = max(r["n"] for r in micro), micro[0]["n_shot"]
        secondary = [m for m in TABLE_METRICS[fmt] if m != primary]
        lines += [f"## {bench} {fmt.upper()} ({n_shot}-shot, n={n})", "",
                  f"| mode | step | {primary} micro | {primary} macro | Δ base (micro) | Δ vanilla (micro) | "
                  + " | ".join(f"{m} micro" for m in secondary) + " |",
                  "|---|---:|" + "---:|" * (4 + len(secondary))]
        for mode, step in _points(brows):
            m = cell[(mode, step, "micro", primary)]
            ma = cell[(mode, step, "macro", primary)]
            lines.append(f"| {mode} | {step} | {_fmt(m['value'], m['stderr'])} | {_fmt(ma['value'], ma['stderr'])} | "
                         f"{_fmt(m['delta_base'], m['delta_base_stderr'], True)} | "
                         f"{_fmt(m['gain_over_vanilla'], m['gain_stderr'], True)} | "
                         + " | ".join(_fmt(cell[(mode, step, 'micro', s)]["value"], cell[(mode, step, 'micro', s)]["stderr"])
                                      for s in secondary) + " |")
        subtasks = sorted({r["group"] for r in brows if r["group"].startswith("subtask:")})
        if subtasks:
            n_of = {g: max(r["n"] for r in brows if r["group"] == g) for g in subtasks}
            lines += ["", f"{primary} per subtask:", "",
                      "| mode | step | " + " | ".join(f"{g[8:]} (n={n_of[g]})" for g in subtasks) + " |",
                      "|---|---:|" + "---:|" * len(subtasks)]
            for mode, step in _points(brows):
                lines.append(f"| {mode} | {step} | " + " | ".join(
                    _fmt(cell[(mode, step, g, primary)]["value"], cell[(mode, step, g, primary)]["stderr"])
                    if (mode, step, g, primary) in cell else "–" for g in subtasks) + " |")
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
    steps = sorted({r["step"] for r in rows})
    span = (max(steps) - min(steps)) or 1
    for ax, (bench, fmt) in zip(axes.flat, panels):
        metric = PRIMARY_METRIC[fmt]
        sel = [r for r in rows if r["benchmark"] == bench and r["format"] == fmt and r["metric"] == metric
               and r["group"] == "micro"]
        base = [r for r in sel if r["mode"] == BASE_MODE]
        modes = sorted({r["mode"] for r in sel} - {BASE_MODE}, key=_mode_key)
        for j, mode in enumerate(modes):
            pts = base + sorted((r for r in sel if r["mode"] == mode), key=lambda r: r["step"])
            offset = (j - (len(modes) - 1) / 2) * 0.015 * span  # identical lines stay visible
            ax.errorbar([r["step"] + offset for r in pts], [r["value"] for r in pts],
                        yerr=[0 if math.isnan(r["stderr"]) else r["stderr"] for r in pts],
                        marker=MARKERS[j % len(MARKERS)], capsize=3, alpha=0.85, label=mode)
        if not modes and base:
            ax.errorbar([0], [base[0]["value"]], yerr=[base[0]["stderr"]], marker="o", label=BASE_MODE)
        chance = [r["value"] for r in rows if r["benchmark"] == bench and r["format"] == fmt
                  and r["metric"] == "chance" and r["group"] == "micro"]
        if chance:
            ax.axhline(sum(chance) / len(chance), color="grey", linestyle=":", label="chance")
        ax.set_ylim(-0.02, 1.02)  # one absolute scale for every panel
        n_shot = sel[0]["n_shot"] if sel else "?"
        ax.set_title(f"{bench} {fmt.upper()} ({n_shot}-shot)")
        ax.set_xlabel("CPT step (0 = base model)")
        ax.set_ylabel(f"{metric} (micro)")
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
                                    "metric": metric, "mode": mode, "step": final, "n_shot": r.get("n_shot", ""),
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
    _atomic_write_text(md_path, comparison_markdown(out))
    plot_comparison(out, png_path, {k: sum(v) / len(v) for k, v in chance.items()})
    return out


def comparison_markdown(out: list[dict[str, Any]]) -> str:
    families = sorted({r["family"] for r in out})
    modes = sorted({r["mode"] for r in out}, key=_mode_key)
    lines = ["# Cross-family comparison", "",
             "Each family at its final CPT step. Cells: score ± stderr, then in brackets the gain over vanilla "
             "± its stderr (paired over the same items where per-item scores exist; see the CSV's "
             "gain_stderr_kind) and the change from the base model (Δb). `base`: the model before CPT.", "",
             protocol_markdown(),
             "## Scores", "",
             "| benchmark | format | n-shot | average | metric | " + " | ".join(
                 f"{fam} base" for fam in families) + " | " + " | ".join(
                 f"{fam} {mode}" for fam in families for mode in modes) + " |",
             "|---|---|---:|---|---|" + "---:|" * (len(families) + len(families) * len(modes))]
    cell = {(r["family"], r["mode"], r["benchmark"], r["format"], r["group"], r["metric"]): r for r in out}
    keys = sorted({(r["benchmark"], r["format"], r["group"], r["metric"]) for r in out},
                  key=lambda k: (k[0], k[1], SCOPES.index(k[2]), TABLE_METRICS[k[1]].index(k[3])))
    for bench, fmt, group, metric in keys:
        bases, shots = [], set()
        for fam in families:
            any_row = next((r for r in out if r["family"] == fam and r["benchmark"] == bench and r["format"] == fmt
                            and r["group"] == group and r["metric"] == metric), None)
            bases.append(_fmt(any_row["base_value"], any_row["base_stderr"]) if any_row else "–")
            if any_row:
                shots.add(str(any_row["n_shot"]))
        cells = []
        for fam in families:
            for mode in modes:
                r = cell.get((fam, mode, bench, fmt, group, metric))
                if r is None:
                    cells.append("–")
                    continue
                text = _fmt(r["value"], r["stderr"])
                extra = []
                if mode != REFERENCE_MODE and not _isnan(r["gain_over_vanilla"]):
                    extra.append(_fmt(r["gain_over_vanilla"], r["gain_stderr"], True))
                if not _isnan(r["delta_base"]):
                    extra.append("Δb " + _fmt(r["delta_base"], r["delta_base_stderr"], True))
                cells.append(text + (f" ({'; '.join(extra)})" if extra else ""))
        lines.append(f"| {bench} | {fmt.upper()} | {'/'.join(sorted(shots))} | {group} | {metric} | "
                     + " | ".join(bases + cells) + " |")
    steps = ", ".join(f"{fam}: step {next(r['step'] for r in out if r['family'] == fam)}" for fam in families)
    lines += ["", f"Final steps: {steps}.", ""]
    return "\n".join(lines)


def plot_comparison(out: list[dict[str, Any]], png_path: str | Path,
                    chance: dict[tuple[str, str], float] | None = None) -> None:
    """Absolute primary scores (micro) of base and every mode at the final step, one y-scale (0-1)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    primary = [r for r in out if r["metric"] == PRIMARY_METRIC[r["format"]] and r["group"] == "micro"]
    panels = sorted({(r["benchmark"], r["format"]) for r in primary})
    families = sorted({r["family"] for r in primary})
    modes = [BASE_MODE] + sorted({r["mode"] for r in primary}, key=_mode_key)
    cols = min(3, len(panels))
    nrows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(5 * cols, 3.6 * nrows), squeeze=False, sharey=True)
    width = 0.8 / len(modes)
    for ax, (bench, fmt) in zip(axes.flat, panels):
        for j, mode in enumerate(modes):
            vals, errs = [], []
            for fam in families:
                r = next((x for x in primary if x["family"] == fam and x["benchmark"] == bench
                          and x["format"] == fmt and (mode == BASE_MODE or x["mode"] == mode)), None)
                if r is None:
                    vals.append(math.nan)
                    errs.append(0.0)
                elif mode == BASE_MODE:
                    vals.append(r["base_value"])
                    errs.append(0.0 if _isnan(r["base_stderr"]) else r["base_stderr"])
                else:
                    vals.append(r["value"])
                    errs.append(0.0 if _isnan(r["stderr"]) else r["stderr"])
            xs = [i + (j - (len(modes) - 1) / 2) * width for i in range(len(families))]
            ax.bar(xs, vals, width=width, yerr=errs, capsize=3, label=mode)
        if (chance or {}).get((bench, fmt)) is not None:
            ax.axhline(chance[(bench, fmt)], color="grey", linestyle=":", label="chance")
        ax.set_ylim(0, 1)
        ax.set_xticks(range(len(families)))
        ax.set_xticklabels(families, fontsize=8)
        ax.set_title(f"{bench} {fmt.upper()}")
        ax.set_ylabel(f"{PRIMARY_METRIC[fmt]} (micro)")
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.suptitle("Final CPT step per family and mode (base = before CPT); gains with stderr in comparison.md")
    fig.tight_layout()
    _save_figure(fig, png_path)
    plt.close(fig)


def aggregate_stage(smk: Any) -> None:
    aggregate_family(list(smk.input.results), smk.output.csv, smk.output.md, smk.output.plot,
                     family=smk.wildcards.family)


def compare_stage(smk: Any) -> None:
    compare_families(list(smk.input.reports), smk.output.csv, smk.output.md, smk.output.plot)
