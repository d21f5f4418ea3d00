"""Run summary of one family: every gate with its verdict and key numbers (import parity, the step-0
gate of each mode, export parity of each kept checkpoint), tokens seen and time per mode, the
software that ran, and links to every job's log. Markdown (with an HTML rendering for the report)
and a tidy CSV of the same numbers.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from morphcpt.errors import MorphcptError
from morphcpt.fileio import write_csv_atomic, write_text_atomic
from morphcpt.reporting.html_page import markdown_page
from morphcpt.reporting.training_log import TrainingLog, read_training_log

CSV_FIELDS = ("family", "section", "item", "mode", "step", "verdict", "metric", "value", "threshold", "source")
PARITY_KEYS = ("passed", "rel_diff", "top1_agreement", "kl", "thresholds")
PARITY_METRICS = (("rel_diff", "max_rel_diff", "≤"), ("top1_agreement", "min_top1_agreement", "≥"), ("kl", "max_kl", "≤"))


def read_parity(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise MorphcptError(f"{path}: unreadable parity report ({exc}); rerun the rule that wrote it") from None
    missing = [k for k in PARITY_KEYS if k not in report] + [
        f"thresholds.{t}" for _, t, _ in PARITY_METRICS if t not in report.get("thresholds", {})]
    if missing:
        raise MorphcptError(f"{path}: parity report lacks {', '.join(missing)}; rerun the rule that wrote it")
    return report


def verdict(passed: Any) -> str:
    return "passed" if passed is True else "FAILED"


def _g(x: Any) -> str:
    return "–" if x is None else f"{x:.4g}" if isinstance(x, float) else str(x)


def _parity_rows(family: str, item: str, mode: str, step: Any, report: dict[str, Any], source: str):
    return [{"family": family, "section": "gate", "item": item, "mode": mode, "step": step,
             "verdict": verdict(report["passed"]), "metric": key, "value": report[key],
             "threshold": f"{op} {report['thresholds'][t]}", "source": source} for key, t, op in PARITY_METRICS]


def _step0_rows(family: str, log: TrainingLog, source: str):
    g = log.step0_gate
    common = {"family": family, "section": "gate", "item": "step0", "mode": log.mode, "step": 0,
              "verdict": verdict(g["passed"]), "source": source}
    return [{**common, "metric": "nemo_loss", "value": g["nemo_loss"]},
            {**common, "metric": "hf_loss", "value": g["hf_loss"]},
            {**common, "metric": "relative_diff", "value": g["relative_diff"], "threshold": f"< {g['tolerance']}"},
            {**common, "metric": "relative_diff_control", "value": g["relative_diff_control"]},
            # the gate batch of many short documents decides the attention objective (docs/design.md §6)
            *([{**common, "metric": "gate_batch_relative_diff", "value": g["gate_batch"]["relative_diff"],
                "threshold": f"< {g['tolerance']}"},
               {**common, "metric": "control_gap", "value": g["control_gap"],
                "threshold": f"≥ {g['min_separation']:g} × {g['tolerance']}"}] if "gate_batch" in g else [])]


def _training_rows(family: str, log: TrainingLog, source: str):
    common = {"family": family, "section": "training", "item": "train", "mode": log.mode, "source": source}
    rates = [s["tokens_per_s"] for s in log.steps if isinstance(s.get("tokens_per_s"), (int, float))]
    values = {"steps": log.max_steps, "tokens_seen": log.tokens_seen, "launches": len(log.launch_starts),
              "resumed_at_steps": " ".join(map(str, log.resume_steps)), "redone_steps": log.records - log.max_steps,
              "final_loss": log.steps[-1]["loss"],
              "wall_seconds": None if log.wall_seconds is None else round(log.wall_seconds, 1),
              "step_seconds": round(log.step_seconds, 3),
              "mean_tokens_per_s": round(sum(rates) / len(rates), 1) if rates else None,
              "kept_checkpoints": " ".join(map(str, log.checkpoint_steps))}
    return [{**common, "metric": k, "value": v} for k, v in values.items()]


def software_rows(family: str, recorded: list[tuple[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """One row per (component, version) with every report that recorded it."""
    seen: dict[tuple[str, str], list[str]] = {}
    for source, versions in recorded:
        for name, version in sorted(versions.items()):
            seen.setdefault((name, "none" if version is None else str(version)), []).append(source)
    return [{"family": family, "section": "software", "item": name, "metric": "version", "value": version,
             "source": " ".join(sources)} for (name, version), sources in sorted(seen.items())]


def _count_kinds(sources: list[str]) -> str:
    """"import_parity, train x3, export x6" for the sources import_parity, train:<mode>, export:<mode>:<step>."""
    kinds: dict[str, int] = {}
    for source in sources:
        kind = source.split(":")[0]
        kinds[kind] = kinds.get(kind, 0) + 1
    return ", ".join(k if n == 1 else f"{k} x{n}" for k, n in kinds.items())


def summary_markdown(family: str, rows: list[dict[str, Any]], logs: list[tuple[str, str, str]], md_dir: Path,
                     results_dir: Path) -> str:
    def rel(path: str) -> str:
        return os.path.relpath(path, md_dir)

    def shown(path: str) -> str:
        return os.path.relpath(path, results_dir)

    gates = [r for r in rows if r["section"] == "gate"]
    lines = [f"# Run summary: {family}", "",
             "Every gate of the run with its verdict and key numbers, the training of each mode, the software "
             "and the logs. Paths are relative to the results folder.", "",
             "## Gates", "", "| gate | mode | step | verdict | key numbers | must hold | report |",
             "|---|---|---:|---|---|---|---|"]
    keyed: dict[tuple, list[dict[str, Any]]] = {}
    for r in gates:
        keyed.setdefault((r["item"], r["mode"], r["step"], r["source"]), []).append(r)
    names = {"import_parity": "import parity (NeMo vs HF logits)", "step0": "step-0 loss (NeMo vs HF, same batch)",
             "export_parity": "export parity (HF export vs NeMo checkpoint)"}
    for (item, mode, step, source), rs in keyed.items():
        by = {r["metric"]: r for r in rs}
        if item == "step0":
            numbers = (f"NeMo {by['nemo_loss']['value']:.5f} vs HF {by['hf_loss']['value']:.5f}: gap "
                       f"{by['relative_diff']['value']:.2e}; control gap {by['relative_diff_control']['value']:.2e}")
            must = f"gap {by['relative_diff']['threshold']}"
            if "control_gap" in by:
                numbers += (f"; gate batch: gap {by['gate_batch_relative_diff']['value']:.2e}, objectives "
                            f"{by['control_gap']['value']:.2e} apart")
                must += (f", gate batch gap {by['gate_batch_relative_diff']['threshold']} and closer than the "
                         f"control, objectives apart {by['control_gap']['threshold']}")
        else:
            numbers = ", ".join(f"{m} {_g(by[m]['value'])}" for m, _, _ in PARITY_METRICS)
            must = ", ".join(f"{m} {by[m]['threshold']}" for m, _, _ in PARITY_METRICS)
        lines.append(f"| {names[item]} | {mode or '–'} | {'' if step is None else step} | **{rs[0]['verdict']}** | "
                     f"{numbers} | {must} | [{shown(source)}]({rel(source)}) |")
    train = [r for r in rows if r["section"] == "training"]
    modes = list(dict.fromkeys(r["mode"] for r in train))
    metrics = list(dict.fromkeys(r["metric"] for r in train))
    heads = {"steps": "steps", "tokens_seen": "tokens seen", "launches": "launches",
             "resumed_at_steps": "resumed at step", "redone_steps": "redone steps", "final_loss": "final loss",
             "wall_seconds": "wall time (s)", "step_seconds": "time in steps (s)", "mean_tokens_per_s": "mean tokens/s",
             "kept_checkpoints": "kept checkpoints (step)"}
    lines += ["", "## Training", "", "Wall time: from the first launch of the trainer to the end of training "
              "(metrics.json written), waits between launches included. Time in steps: the sum of the logged step "
              "times (no startup, no checkpoint saving, no redone steps). A launch after the first is a resume "
              "from the latest checkpoint.", "",
              "| mode | " + " | ".join(heads[m] for m in metrics) + " |", "|---|" + "---:|" * len(metrics)]
    for mode in modes:
        by = {r["metric"]: r["value"] for r in train if r["mode"] == mode}
        lines.append(f"| {mode} | " + " | ".join(_g(by[m]) if by[m] != "" else "–" for m in metrics) + " |")
    lines += ["", "## Software", "", "| component | version | recorded in |", "|---|---|---|"]
    for r in rows:
        if r["section"] == "software":
            lines.append(f"| {r['item']} | {r['value']} | {_count_kinds(r['source'].split())} |")
    lines += ["", "## Logs", "", "| stage | job | log |", "|---|---|---|"]
    for stage, job, path in logs:
        link = f"[{shown(path)}]({rel(path)})" if Path(path).is_file() else f"{shown(path)} (missing)"
        lines.append(f"| {stage} | {job} | {link} |")
    return "\n".join(lines) + "\n"


def write_run_summary(family: str, import_parity: str | Path, metrics_by_mode: dict[str, str | Path],
                      export_parity: dict[tuple[str, int], str | Path], logs: list[tuple[str, str, str]],
                      outputs: dict[str, str | Path], results_dir: str | Path) -> list[dict[str, Any]]:
    """Write outputs["md"], ["csv"] and ["html"]; return the CSV rows."""
    results_dir = Path(results_dir)
    imp = read_parity(import_parity)
    rows = _parity_rows(family, "import_parity", "", None, imp, str(import_parity))
    training = [read_training_log(path, mode) for mode, path in metrics_by_mode.items()]
    rows += [r for log in training for r in _step0_rows(family, log, str(metrics_by_mode[log.mode]))]
    exports = {key: read_parity(path) for key, path in export_parity.items()}
    rows += [r for (mode, step), rep in exports.items() for r in
             _parity_rows(family, "export_parity", mode, step, rep, str(export_parity[(mode, step)]))]
    rows += [r for log in training for r in _training_rows(family, log, str(metrics_by_mode[log.mode]))]
    recorded = [("import_parity", imp.get("software") or {})] + [
        (f"train:{log.mode}", log.software) for log in training] + [
        (f"export:{m}:{s}", rep.get("software") or {}) for (m, s), rep in exports.items()]
    rows += software_rows(family, recorded)
    md = summary_markdown(family, rows, logs, Path(outputs["md"]).parent, results_dir)
    write_csv_atomic(outputs["csv"], CSV_FIELDS, rows)
    write_text_atomic(outputs["html"], markdown_page(md, f"Run summary: {family}"))
    write_text_atomic(outputs["md"], md)
    return rows


def family_logs(layout: Any, family: str) -> list[tuple[str, str, str]]:
    """(stage, job, log path) of every job of a family's arm, in DAG order."""
    logs = [("download_model", family, layout.log("download_model", family)),
            ("import_nemo", family, layout.log("import_nemo", family)),
            ("import_parity", family, layout.log("import_parity", family))]
    logs += [("train", mode, layout.log("train", family, mode)) for mode in layout.modes]
    logs += [("export", f"{mode} step {s}", layout.log("export", family, mode, f"step_{s}"))
             for mode in layout.modes for s in layout.steps]
    logs += [("evaluate", f"{mode} step {s}", layout.log("evaluate", family, mode, f"step_{s}"))
             for mode, s in layout.eval_points(family)]
    logs += [("aggregate", family, layout.log("aggregate", family))]
    return logs


def run_summary_stage(smk: Any) -> None:
    """The run_summary rule (inputs import_parity, metrics per mode, export parity per mode x step)."""
    from morphcpt.layout import Layout

    layout = Layout(smk.config)
    family = smk.wildcards.family
    metrics = dict(zip(layout.modes, smk.input.metrics, strict=True))
    keys = [(m, s) for m in layout.modes for s in layout.steps]
    exports = dict(zip(keys, smk.input.export_parity, strict=True))
    rows = write_run_summary(family, smk.input.import_parity, metrics, exports, family_logs(layout, family),
                             dict(smk.output.items()), layout.root)
    failed = sorted({(r["item"], r["mode"], str(r["step"])) for r in rows if r.get("verdict") == "FAILED"})
    print(f"run_summary: {family}: {len({(r['item'], r['mode'], r['step']) for r in rows if r['section'] == 'gate'})} "
          f"gates, failed: {failed or 'none'}")
