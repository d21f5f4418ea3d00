"""The scores of one evaluation, from lm-eval's results and samples: per format the micro average
(lm-eval group; its stderr over items, see `micro_cell`), the macro average (subtasks weighted equally), every subtask and every question
type (each metric as value and standard error, with n), and the per-item records.

Missing values (a standard error of one item, lm-eval's "N/A") are `None`: the result JSON is
strict JSON (`strict_json`; no NaN, which strict parsers reject).
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from morphcpt.evaluation.scoring import GEN_METRICS, MCQ_METRICS, PRIMARY_METRIC
from morphcpt.evaluation.task_folder import group_name, subtask_of, task_name


def metrics_of(fmt: str) -> tuple[str, ...]:
    return MCQ_METRICS if fmt == "mcq" else GEN_METRICS


def strict_json(obj: Any) -> Any:
    """NaN and infinities become None, recursively (json.dumps(..., allow_nan=False) then succeeds)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v) for v in obj]
    return obj


def item_records(samples: dict[str, list[dict]]) -> list[dict]:
    """Per item: its metrics and the prediction (generated text / one log-likelihood per option).
    The prompt the model saw is the item's `context` in the task folder's data."""
    records = []
    for task, task_samples in sorted(samples.items()):
        for s in task_samples:
            doc = s["doc"]
            fmt = doc["format"]
            resp = s["filtered_resps"]
            prediction = ([float(r[0]) for r in resp] if fmt == "mcq"
                          else (resp if isinstance(resp, str) else resp[0]))
            records.append({"id": doc["id"], "format": fmt, "task": task, "subtask": subtask_of(doc),
                            "question_type": doc["question_type"], "category": doc["category"],
                            "subcategory": doc["subcategory"], "level": doc["level"], "shot_ids": doc["shot_ids"],
                            **{m: s[m] for m in metrics_of(fmt)}, "prediction": prediction})
    return records


def _cell(entry: dict[str, Any], metric: str) -> dict[str, float | None]:
    value = entry.get(f"{metric},none")
    stderr = entry.get(f"{metric}_stderr,none")
    as_float = lambda x: float(x) if isinstance(x, (int, float)) and math.isfinite(x) else None  # noqa: E731
    return {"value": as_float(value), "stderr": as_float(stderr)}


def micro_cell(entry: dict[str, Any], metric: str, values: list[float]) -> dict[str, float | None]:
    """The group's value from lm-eval, its stderr over all the format's items (sample sd / sqrt(n)).
    lm-eval's pooled group stderr leaves out the spread between subtask means (0.0 for an
    accuracy of 2/12 whose levels each score 0 or 1 throughout), so it is not used."""
    cell = _cell(entry, metric)
    if values:
        cell["stderr"] = mean_cell(values)["stderr"]
    return cell


def mean_cell(values: list[float]) -> dict[str, float | None]:
    """Mean and standard error (sample sd / sqrt(n), as lm-eval's mean_stderr) of per-item scores."""
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return {"value": mean, "stderr": None}
    var = sum((v - mean) ** 2 for v in values) / (n - 1)
    return {"value": mean, "stderr": math.sqrt(var / n)}


def macro_average(cells: list[dict[str, float | None]]) -> dict[str, float | None]:
    """Subtasks weighted equally, with lm-eval's group functions (weight_by_size=False)."""
    from lm_eval.api.metrics import aggregate_subtask_metrics, unweighted_mean_stderr

    values = [c["value"] for c in cells]
    stderrs = [c["stderr"] for c in cells]
    value = aggregate_subtask_metrics(values, [1] * len(values), weight_by_size=False)
    stderr = unweighted_mean_stderr(stderrs) if len(cells) > 1 and None not in stderrs else None
    return {"value": float(value), "stderr": None if stderr is None else float(stderr)}


def summarize(result: dict[str, Any], records: list[dict], benchmark: str, settings: dict) -> dict[str, Any]:
    """Per format: micro and macro averages, each subtask and each question type, with n."""
    summary = {}
    for fmt, s in settings.items():
        metrics = metrics_of(fmt)
        per_subtask = {}
        for name in s["tasks"]:
            subtask = name[len(group_name(benchmark, fmt)) + 1:]
            assert task_name(benchmark, fmt, subtask) == name
            per_subtask[subtask] = {"n": result["n-samples"][name]["effective"],
                                    **{m: _cell(result["results"][name], m) for m in metrics}}
        by_type: dict[str, list[dict]] = defaultdict(list)
        for rec in records:
            if rec["format"] == fmt:
                by_type[rec["question_type"]].append(rec)
        summary[fmt] = {
            "primary_metric": PRIMARY_METRIC[fmt],
            "n": sum(x["n"] for x in per_subtask.values()),
            "n_shot": s["n_shot"],
            "max_gen_toks": s["max_gen_toks"],
            "fewshot_fallbacks": s["fewshot_fallbacks"],
            "micro": {m: micro_cell(result["results"][group_name(benchmark, fmt)], m,
                                    [float(r[m]) for recs in by_type.values() for r in recs]) for m in metrics},
            "macro": {m: macro_average([per_subtask[x][m] for x in per_subtask]) for m in metrics},
            "subtasks": per_subtask,
            "question_types": {qt: {"n": len(recs), **{m: mean_cell([float(r[m]) for r in recs]) for m in metrics}}
                               for qt, recs in sorted(by_type.items())},
        }
    return summary


def summary_lines(result: dict[str, Any]) -> list[str]:
    lines = []
    benchmark = (result.get("provenance") or {}).get("benchmark", "")
    for fmt, s in result["summary"].items():
        m = s["primary_metric"]
        lines.append(f"{benchmark} {fmt} ({s['n_shot']['total']}-shot, n={s['n']}): {m} "
                     f"micro={s['micro'][m]['value']:.4f} macro={s['macro'][m]['value']:.4f}")
    return lines
