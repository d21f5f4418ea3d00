"""The lm-evaluation-harness task folder of one benchmark: what the pipeline scores and what
`lm_eval --include_path <folder>` reruns.

Layout (`write_task_folder`):
    <folder>/README.md                 what the folder is and the command that reproduces the scores
    <folder>/utils.py                  `morphcpt.evaluation.scoring` (self-contained) + the loader and
                                       `process_results` the YAMLs name with `!function`
    <folder>/morphcpt_<b>_<fmt>.yaml   the group of a format (micro average over its subtasks)
    <folder>/<task>.yaml               one task per subtask (hierarchical level, PACUTE category, CUTE
                                       task, LangGame task type): `doc_to_text: context`
    <folder>/data/<task>.jsonl         the scored items with their full `context`

Every item's context already holds its few-shot examples (`fewshot`: own question type, drawn per
item with the seed), so the YAMLs say `num_fewshot: 0` and `metadata.shots_in_prompt` the number
of examples; `limit` is applied when the data is written (the first N items of each format, file
order), so lm-eval runs without `--limit`. The pipeline itself scores this folder through
lm-eval's TaskManager: the reproduction runs the same YAML, data and code.
"""

from __future__ import annotations

import json
import re
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

import yaml

from morphcpt.errors import MorphcptError
from morphcpt.evaluation import scoring
from morphcpt.evaluation.fewshot import build_context, draw_shots, question_type_of
from morphcpt.evaluation.scoring import (ANSWER_TERMINATOR, GEN_METRICS, MCQ_METRICS, STOP_SEQUENCES,
                                         TARGET_DELIMITER, mcq_continuation)

FORMATS = ("mcq", "gen")
# Worked examples already inside each prompt of a benchmark (CUTE's 4 per prompt): no more are added.
EMBEDDED_SHOTS = {"cute": 4}
GEN_TOKEN_SLACK = 5     # tokens beyond the longest gold: the terminator, quotes, one stray space
TASK_VERSION = 3.0      # 3: contexts with per-item examples of the question type, `\n\n` terminator

UTILS_TAIL = '''

# -- lm-eval hooks (written by morphcpt.evaluation.task_folder) -----------------------------------
def load_items(data_file, **_):
    """custom_dataset: the task's items (JSON lines next to this file) as split `test`."""
    import json
    from pathlib import Path

    import datasets

    path = Path(__file__).parent / data_file
    with open(path, encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    return {"test": datasets.Dataset.from_list(rows)}


def process_results(doc, results):
    """Per-item metrics (tie-aware acc, normalised match, ...): `item_metrics` above."""
    return item_metrics(doc, results)
'''


def task_folder_of(result_path: str | Path) -> Path:
    """The lm-eval task folder written next to a result JSON (`pacute.json` -> `pacute.lm_eval_tasks/`)."""
    result_path = Path(result_path)
    return result_path.with_name(result_path.stem + ".lm_eval_tasks")


def group_name(benchmark: str, fmt: str) -> str:
    return f"morphcpt_{benchmark}_{fmt}"


def subtask_of(item: dict[str, Any]) -> str:
    """The lm-eval task within a benchmark format: hierarchical by level, others by category
    (PACUTE's category, CUTE's task, LangGame's task type; the benchmark itself when none)."""
    if item["benchmark"] == "hierarchical":
        return f"level{item['level']}"
    return re.sub(r"[^a-z0-9]+", "_", str(item["category"]).lower()).strip("_") or item["benchmark"]


def task_name(benchmark: str, fmt: str, subtask: str) -> str:
    return f"{group_name(benchmark, fmt)}_{subtask}"


def shots_of(benchmark: str, fmt: str, num_fewshot: dict[str, int]) -> dict[str, int]:
    """Examples added per prompt and examples already in the prompt, for one benchmark format."""
    embedded = EMBEDDED_SHOTS.get(benchmark, 0)
    added = 0 if embedded else int(num_fewshot.get(fmt, 0))
    return {"added": added, "in_prompt": embedded, "total": added + embedded}


def plan_tasks(items: list[dict[str, Any]], benchmark: str, *, seed: int, num_fewshot: dict[str, int],
               limit: int | None) -> dict[str, Any]:
    """{fmt: {"subtasks": {subtask: [task rows]}, "fallbacks": [ids]}}: the first `limit` items of
    each format (file order), each with its context (examples of its question type) and fields."""
    plan: dict[str, Any] = {}
    for fmt in FORMATS:
        docs = [it for it in items if it["format"] == fmt]
        if not docs:
            continue
        scored = docs[: limit or None]
        n = shots_of(benchmark, fmt, num_fewshot)["added"]
        shots, fallbacks = draw_shots(docs, scored, n, seed, benchmark)
        subtasks: dict[str, list] = defaultdict(list)
        for it in scored:
            row = {**it, "question_type": question_type_of(it), "shot_ids": [s["id"] for s in shots[it["id"]]],
                   "context": build_context(it, shots[it["id"]])}
            if fmt == "mcq":
                row["continuations"] = [mcq_continuation(c) for c in it["choices"]]
            subtasks[subtask_of(it)].append(row)
        plan[fmt] = {"subtasks": dict(subtasks), "fallbacks": fallbacks, "n_shot": shots_of(benchmark, fmt, num_fewshot)}
    return plan


def gen_token_budget(docs: list[dict[str, Any]], encode: Callable[[str], list[int]] | None, cap: int) -> int:
    """max_gen_toks of a GEN subtask: its longest gold (as the model tokenizes it) plus slack, at most cap."""
    if encode is None:
        return cap
    longest = max(len(encode(TARGET_DELIMITER + it["answer"] + ANSWER_TERMINATOR)) for it in docs)
    return min(cap, longest + GEN_TOKEN_SLACK)


def _task_config(benchmark: str, fmt: str, subtask: str, rows: list[dict], n_shot: dict[str, int],
                 max_gen_toks: int | None, seed: int) -> dict[str, Any]:
    name = task_name(benchmark, fmt, subtask)
    metrics = MCQ_METRICS if fmt == "mcq" else GEN_METRICS
    config: dict[str, Any] = {
        "task": name,
        "dataset_kwargs": {"data_file": f"data/{name}.jsonl"},
        "test_split": "test",
        "doc_to_text": "context",
        "target_delimiter": TARGET_DELIMITER,
        "num_fewshot": 0,
        "metric_list": [{"metric": m, "aggregation": "mean", "higher_is_better": m != "chance"} for m in metrics],
        "metadata": {"version": TASK_VERSION, "benchmark": benchmark, "format": fmt, "subtask": subtask,
                     "items": len(rows), "shots_in_prompt": n_shot["total"], "shots_added": n_shot["added"],
                     "shot_draw": f"per item, own question type, random.Random('{seed}:{benchmark}:{fmt}:<id>:fewshot')"},
    }
    if fmt == "mcq":
        config.update(output_type="multiple_choice", doc_to_choice="continuations", doc_to_target="gold")
    else:
        config.update(output_type="generate_until", doc_to_target="answer",
                      generation_kwargs={"until": list(STOP_SEQUENCES), "do_sample": False, "temperature": 0.0,
                                         "max_gen_toks": max_gen_toks})
    return config


def _dump_task_yaml(config: dict[str, Any]) -> str:
    # `!function` tags are lm-eval's YAML extension; the rest is plain YAML
    return ("custom_dataset: !function utils.load_items\nprocess_results: !function utils.process_results\n"
            + yaml.safe_dump(config, sort_keys=False, allow_unicode=True, width=1000))


def write_task_folder(folder: str | Path, plan: dict[str, Any], benchmark: str, *, seed: int,
                      max_gen_tokens: int, encode: Callable[[str], list[int]] | None = None) -> dict[str, Any]:
    """Write the folder (replacing an old one); return per format the group, task names, n-shot,
    max_gen_toks per subtask and the ids drawn from a parent pool."""
    folder = Path(folder)
    if folder.exists():
        shutil.rmtree(folder)
    (folder / "data").mkdir(parents=True)
    (folder / "utils.py").write_text(Path(scoring.__file__).read_text(encoding="utf-8") + UTILS_TAIL, encoding="utf-8")
    settings: dict[str, Any] = {}
    for fmt, part in plan.items():
        group = group_name(benchmark, fmt)
        tasks, gen_toks = [], {}
        for subtask, rows in part["subtasks"].items():
            name = task_name(benchmark, fmt, subtask)
            if fmt == "gen":
                gen_toks[subtask] = gen_token_budget(rows, encode, max_gen_tokens)
            config = _task_config(benchmark, fmt, subtask, rows, part["n_shot"], gen_toks.get(subtask), seed)
            (folder / "data" / f"{name}.jsonl").write_text(
                "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
            (folder / f"{name}.yaml").write_text(_dump_task_yaml(config), encoding="utf-8")
            tasks.append(name)
        metrics = MCQ_METRICS if fmt == "mcq" else GEN_METRICS
        group_config = {"group": group, "task": tasks,
                        "aggregate_metric_list": [{"metric": m, "aggregation": "mean", "weight_by_size": True}
                                                  for m in metrics],
                        "metadata": {"version": TASK_VERSION}}
        (folder / f"{group}.yaml").write_text(yaml.safe_dump(group_config, sort_keys=False), encoding="utf-8")
        settings[fmt] = {"group": group, "tasks": tasks, "n_shot": part["n_shot"], "max_gen_toks": gen_toks or None,
                         "fewshot_fallbacks": part["fallbacks"]}
    if not settings:
        raise MorphcptError(f"{benchmark}: no items to score")
    return settings


def write_readme(folder: str | Path, benchmark: str, groups: list[str], command: str) -> None:
    Path(folder, "README.md").write_text(
        f"# lm-eval tasks: {benchmark}\n\n"
        "Written by morphcpt (`morphcpt.evaluation.task_folder`); the pipeline scored exactly these files.\n"
        "Each item's `context` holds its few-shot examples (own question type, drawn per item with the seed), so\n"
        "the YAMLs say `num_fewshot: 0`; `metadata.shots_in_prompt` gives the number of examples.\n\n"
        f"Groups (micro average of their tasks): {', '.join(groups)}\n\nReproduce:\n\n```\n{command}\n```\n",
        encoding="utf-8")


def reproduce_command(folder: str | Path, groups: list[str], model_args: str, batch_size: int | str, device: str) -> str:
    """The lm_eval CLI call that reruns the folder's groups on the model, as the pipeline ran them."""
    return (f"lm_eval --model hf --model_args {model_args} --tasks {','.join(groups)} "
            f"--include_path {folder} --batch_size {batch_size} --device {device}")
