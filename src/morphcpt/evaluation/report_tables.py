"""Markdown of the evaluation reports: the protocol, one family's tables, the cross-family table.

Significance: each delta is tested with z = delta / stderr (paired over the same items where
per-item scores exist), two-sided normal p-value, and the p-values of one table are corrected
together with Holm's step-down method (family-wise error 0.05); the table states how many tests
it corrects for. `*` marks a delta significant after the correction.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from morphcpt.evaluation.report_plots import BASE_MODE, REFERENCE_MODE, mode_key
from morphcpt.evaluation.scoring import NORMALISERS, PRIMARY_METRIC

SCOPES = ("micro", "macro")
TABLE_METRICS = {"mcq": ("acc", "acc_norm", "acc_chance_corrected"),
                 "gen": ("normalized_match", "exact_match", "contains_match")}
ALPHA = 0.05


def isnan(x: Any) -> bool:
    return x is None or x == "" or (isinstance(x, float) and math.isnan(x))


def fmt(value: float | None, stderr: float | None = None, signed: bool = False) -> str:
    if isnan(value):
        return "–"
    text = f"{value:+.3f}" if signed else f"{value:.3f}"
    if not isnan(stderr) and stderr == 0 and not signed and value in (0.0, 1.0):
        return f"{text} (every item {int(value)})"  # not "0.000 ± 0.000"
    return text if isnan(stderr) else f"{text} ± {stderr:.3f}"


def protocol_markdown() -> str:
    """How the numbers were made, for every table (a reviewer's first question)."""
    normalisers = "\n".join(f"  - `{name}`: {doc}" for name, (doc, _) in NORMALISERS.items())
    return "\n".join([
        "## Protocol", "",
        "- **Prompts**: English only (the PACUTE and hierarchical sources' English texts; the scaffold `Options:` / "
        "`Answer:` is English). The item's prompt (PACUTE and hierarchical MCQ prompts list their options, in scoring "
        "order), then `Answer:` (LangGame and addition prompts end in their own `Answer:` / `=`), a space and the "
        "answer, ended by a blank line. Base models, no chat template, BOS first. Backslash-escaped quotes of the "
        "sources are unescaped and a quote glued to the word before gets its space.",
        "- **Scoring tokenizer**: every model is scored through its exported HF folder with the family's canonical "
        "tokenizer (Llama-3 / Gemma 2); the tokenization modes change only how the CPT data was tokenized, never "
        "how the benchmarks are.",
        "- **Few-shot**: `evaluation.num_fewshot` worked examples per prompt, of the item's own question type "
        "(PACUTE subcategory, hierarchical level and subcategory, CUTE task, LangGame task), drawn for each item "
        "separately with `random.Random(f'{seed}:{benchmark}:{format}:{id}:fewshot')`, never the item itself "
        "(it may be scored as an item of its own). Where a question type has too few other items the draw comes "
        "from its category or level (the result JSON lists those items). One draw per item, one seed: the spread "
        "over other draws is not measured. CUTE prompts already hold 4 worked examples: nothing is added, n-shot 4.",
        "- **MCQ**: log-likelihood of each option written ` option\\n\\n` (the blank line every example's answer "
        "ends with, so no option wins or loses by being a token prefix of another: the result JSON counts such "
        "items). `acc` (primary; ties give 1/k), `acc_norm` (per character), `acc_chance_corrected`; `chance` is "
        "the mean of 1/options over the items scored.",
        "- **GEN**: greedy, up to the newline, at most the longest gold's tokens + 5. The answer is the first line "
        "without surrounding whitespace and one pair of quotes. `normalized_match` (primary) compares after the "
        "item's normalisers (both sides); `exact_match` is strict; `contains_match` looks for the gold in the line.",
        "- **Normalisers** (chosen per item from benchmark, subtask and gold; case, diacritics and hyphens, which "
        "mark the affix type, are kept):", normalisers,
        "- **Averages**: `micro` = all items equally (lm-eval group; SE over the items); `macro` = subtasks "
        "equally (SE sqrt(sum se²)/k).",
        "- **±**: one standard error over items (sample sd / sqrt(n)); the same in every figure's error bars. "
        "Δ base and Δ vanilla are paired over the same items (sd of per-item differences / sqrt(n)).",
        "- **Significance**: z = Δ / SE, two-sided; `*` = significant at 0.05 after Holm's correction over every "
        "test of the table (the number is stated under each table).",
        "- **What this cannot show**: one CPT run per mode and one seed: differences between modes include the "
        "run-to-run variance of training, which is not measured; the SEs are over benchmark items only.",
        "- **Reproduce**: each result JSON has `reproduce`, an `lm_eval --include_path` command over the task "
        "folder written next to it (`<benchmark>.lm_eval_tasks/`: YAML, data with every prompt, utils.py).",
        "- **Differs from the authors' protocols**: pacute-bench and CUTE score their own prompts with their own "
        "runners; here options end with a terminator, answers are normalised, few-shot examples come from the "
        "same question type, and dtype is bf16 on GPU (fp32 on CPU) for base and exported models alike. Compare "
        "numbers across models of this table, not with published ones.", ""])


def p_value(delta: Any, stderr: Any) -> float | None:
    """Two-sided normal p-value of delta / stderr; None without a usable stderr."""
    if isnan(delta) or isnan(stderr):
        return None
    delta, stderr = float(delta), float(stderr)
    if stderr <= 0:
        return None if delta == 0 else 0.0
    return math.erfc(abs(delta / stderr) / math.sqrt(2))


def holm(pvalues: dict[Any, float | None], alpha: float = ALPHA) -> tuple[set, int]:
    """Keys whose p-value is significant under Holm's step-down correction, and the number of tests."""
    tests = sorted(((p, k) for k, p in pvalues.items() if p is not None), key=lambda t: t[0])
    m = len(tests)
    significant = set()
    for i, (p, key) in enumerate(tests):
        if p > alpha / (m - i):
            break
        significant.add(key)
    return significant, m


def delta_cell(value: Any, key: Any, significant: set) -> str:
    if isnan(value):
        return "–"
    return f"{float(value):+.3f}" + ("*" if key in significant else "")


def _points(rows: list[dict[str, Any]]) -> list[tuple[str, int]]:
    return sorted({(r["mode"], r["step"]) for r in rows}, key=lambda p: (mode_key(p[0]), p[1]))


def family_markdown(rows: list[dict[str, Any]]) -> str:
    family = rows[0]["family"]
    tests = {}
    for r in rows:
        if r["group"] == "micro" and r["metric"] == PRIMARY_METRIC[r["format"]] and r["mode"] != BASE_MODE:
            tests[("base", id(r))] = p_value(r["delta_base"], r["delta_base_stderr"])
            if r["mode"] != REFERENCE_MODE:
                tests[("vanilla", id(r))] = p_value(r["gain_over_vanilla"], r["gain_stderr"])
    significant, m = holm(tests)
    lines = [f"# Scores: {family}", "",
             "Mean over items ± one standard error. The base model is mode `base`, step 0. Δ base: paired change "
             "from the base model; Δ vanilla: paired gain over vanilla at the same step. `*`: significant at 0.05 "
             f"after Holm's correction over the {m} Δ tests of the primary metric in this report.", "",
             protocol_markdown()]
    by_bench: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in rows:
        by_bench[(r["benchmark"], r["format"])].append(r)
    for (bench, fmt_), brows in sorted(by_bench.items()):
        primary = PRIMARY_METRIC[fmt_]
        cell = {(r["mode"], r["step"], r["group"], r["metric"]): r for r in brows}
        micro = [r for r in brows if r["group"] == "micro"]
        n, n_shot = max(r["n"] for r in micro), micro[0]["n_shot"]
        chance = cell.get((micro[0]["mode"], micro[0]["step"], "micro", "chance"))
        secondary = [m_ for m_ in TABLE_METRICS[fmt_] if m_ != primary]
        lines += [f"## {bench} {fmt_.upper()} ({n_shot}-shot, n={n}"
                  + (f", chance {chance['value']:.3f}" if chance else "") + ")", "",
                  f"| mode | step | {primary} micro | {primary} macro | Δ base (micro) | Δ vanilla (micro) | "
                  + " | ".join(f"{m_} micro" for m_ in secondary) + " |",
                  "|---|---:|" + "---:|" * (4 + len(secondary))]
        for mode, step in _points(brows):
            r = cell[(mode, step, "micro", primary)]
            ma = cell[(mode, step, "macro", primary)]
            lines.append(f"| {mode} | {step} | {fmt(r['value'], r['stderr'])} | {fmt(ma['value'], ma['stderr'])} | "
                         f"{delta_cell(r['delta_base'], ('base', id(r)), significant)} | "
                         f"{delta_cell(r['gain_over_vanilla'], ('vanilla', id(r)), significant)} | "
                         + " | ".join(fmt(cell[(mode, step, 'micro', s)]["value"], cell[(mode, step, 'micro', s)]["stderr"])
                                      for s in secondary) + " |")
        for prefix, title in (("subtask:", "per subtask"), ("qtype:", "per question type")):
            lines += _breakdown(brows, cell, prefix, title, primary, fmt_)
        lines.append("")
    return "\n".join(lines)


def _breakdown(brows: list[dict], cell: dict, prefix: str, title: str, primary: str, fmt_: str) -> list[str]:
    """One row per subtask / question type: n, chance (MCQ), then the primary metric per point."""
    groups = sorted({r["group"] for r in brows if r["group"].startswith(prefix)})
    if not groups:
        return []
    points = _points(brows)
    mcq = fmt_ == "mcq"
    header = [title[4:], "n"] + (["chance"] if mcq else []) + [f"{mode} {step}" for mode, step in points]
    lines = ["", f"{primary} {title} (mean over items; SEs in the CSV):", "",
             "| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for g in groups:
        any_row = next(r for r in brows if r["group"] == g and r["metric"] == primary)
        chance = next((r for r in brows if r["group"] == g and r["metric"] == "chance"), None)
        cells = [g[len(prefix):], str(any_row["n"])] + ([fmt(chance["value"]) if chance else "–"] if mcq else [])
        cells += [fmt(cell[(mode, step, g, primary)]["value"]) if (mode, step, g, primary) in cell else "–"
                  for mode, step in points]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def comparison_markdown(out: list[dict[str, Any]], chance: dict[tuple[str, str], float]) -> str:
    """The main table: per benchmark format (primary metric, micro), one number per cell: the base
    score, each mode's score, and each trained mode's Δ vs vanilla with its significance mark."""
    families = sorted({r["family"] for r in out})
    modes = sorted({r["mode"] for r in out}, key=mode_key)
    others = [m_ for m_ in modes if m_ != REFERENCE_MODE]
    main = [r for r in out if r["group"] == "micro" and r["metric"] == PRIMARY_METRIC[r["format"]]]
    cell = {(r["family"], r["mode"], r["benchmark"], r["format"]): r for r in main}
    gains = {k: p_value(r["gain_over_vanilla"], r["gain_stderr"]) for k, r in cell.items() if k[1] != REFERENCE_MODE}
    base_deltas = {k: p_value(r["delta_base"], r["delta_base_stderr"]) for k, r in cell.items()}
    sig_gain, m_gain = holm(gains)
    sig_base, m_base = holm(base_deltas)
    panels = sorted({(r["benchmark"], r["format"]) for r in main})
    header = ["benchmark", "format", "n", "n-shot", "chance"]
    header += [f"{fam} base" for fam in families]
    header += [f"{fam} {m_}" for fam in families for m_ in modes]
    header += [f"{fam} {m_} Δ vanilla" for fam in families for m_ in others]
    lines = ["# Cross-family comparison", "",
             "Each family at its final CPT step; primary metric (MCQ `acc`, GEN `normalized_match`), micro average. "
             "One number per cell: scores, then each mode's gain over vanilla at the same step (Δ vanilla, paired "
             f"over the same items). `*`: significant at 0.05 after Holm's correction over the {m_gain} Δ vanilla "
             "tests of this table. Standard errors, macro averages and secondary metrics: comparison.csv and the "
             "family reports.", "",
             "## Main table", "",
             "| " + " | ".join(header) + " |", "|---|---|" + "---:|" * (len(header) - 2)]
    for bench, fmt_ in panels:
        rows = [r for r in main if r["benchmark"] == bench and r["format"] == fmt_]
        n = max((r.get("n", "") or 0 for r in rows), default="")
        shots = "/".join(sorted({str(r["n_shot"]) for r in rows}))
        cells = [bench, fmt_.upper(), str(n or "–"), shots, fmt(chance.get((bench, fmt_)))]
        for fam in families:
            any_row = next((r for r in rows if r["family"] == fam), None)
            cells.append(fmt(any_row["base_value"]) if any_row else "–")
        for fam in families:
            for m_ in modes:
                r = cell.get((fam, m_, bench, fmt_))
                cells.append(fmt(r["value"]) if r else "–")
        for fam in families:
            for m_ in others:
                r = cell.get((fam, m_, bench, fmt_))
                cells.append(delta_cell(r["gain_over_vanilla"], (fam, m_, bench, fmt_), sig_gain) if r else "–")
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## Change from the base model", "",
              f"Δ base per mode (paired). `*`: significant at 0.05 after Holm's correction over the {m_base} tests "
              "of this table.", "",
              "| benchmark | format | " + " | ".join(f"{fam} {m_} Δ base" for fam in families for m_ in modes) + " |",
              "|---|---|" + "---:|" * (len(families) * len(modes))]
    for bench, fmt_ in panels:
        cells = [bench, fmt_.upper()]
        for fam in families:
            for m_ in modes:
                r = cell.get((fam, m_, bench, fmt_))
                cells.append(delta_cell(r["delta_base"], (fam, m_, bench, fmt_), sig_base) if r else "–")
        lines.append("| " + " | ".join(cells) + " |")
    steps = ", ".join(f"{fam}: step {next(r['step'] for r in out if r['family'] == fam)}" for fam in families)
    lines += ["", f"Final steps: {steps}.", "", protocol_markdown()]
    return "\n".join(lines)
