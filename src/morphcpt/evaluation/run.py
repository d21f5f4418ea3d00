"""Score an HF model directory on the benchmarks with lm-evaluation-harness.

The package generates the task definitions. Each benchmark format is an lm-eval group
(`morphcpt_<benchmark>_<fmt>`, fmt mcq or gen) of one `ConfigurableTask` per subtask
(`subtask_of`: hierarchical by level 0-5, PACUTE by category, CUTE by task, LangGame by task type
where the source has one), so lm-eval reports every subtask with its standard error and the group's
micro average (items weighted equally, pooled stderr). The macro average (subtasks weighted
equally, stderr sqrt(sum se^2)/k) is computed with lm-eval's own group functions (a task can be in
one lm-eval group only). MCQ tasks are multiple_choice on
log-likelihoods of ` option\\n` (the terminator ends every option: see `scoring`); GEN tasks are
greedy generate_until the terminator, with `max_gen_toks` from the longest gold of the subtask.
Our per-item metrics (`scoring.item_metrics`) are `process_results`.

Few-shot: `num_fewshot[fmt]` examples come from a pool drawn with the seed from the same subtask
(`fewshot_pool`); pool items are never scored. CUTE's prompts already hold 4 worked examples
(`EMBEDDED_SHOTS`), so nothing is added to them and their n-shot is 4.

One model load scores every benchmark (`evaluate_checkpoint`); the dtype is bfloat16 on GPU and
float32 on CPU for every model alike, the batch size is found by lm-eval on GPU ("auto").

Output per benchmark: lm-eval's results dictionary (`results` with the subtasks and the groups,
`groups`, `group_subtasks`, `configs`, `versions`, `n-shot`, `n-samples`, `config`, ...) without
its bulky `samples`, plus
- `summary`: per format the micro and macro average and every subtask (value, stderr, n) of each
  metric, n-shot (added and in-prompt) and max_gen_toks;
- `prefix_pairs`: MCQ items whose options are token prefixes of each other under the model's
  tokenizer, without the terminator (the bias it removes) and with it (always 0; else an error);
- `provenance`: model directory sha256, items sha256 and sources manifest, package versions,
  seeds, batch size, device, dtype, limit, normalisers;
- `item_scores`: per item id its metrics and the prediction (generated text / log-likelihoods).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import random
import re
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

from morphcpt.errors import MorphcptError
from morphcpt.evaluation.items import read_items
from morphcpt.evaluation.scoring import (ANSWER_TERMINATOR, GEN_METRICS, MCQ_METRICS, NORMALISERS,
                                         PRIMARY_METRIC, STOP_SEQUENCES, TARGET_DELIMITER,
                                         count_prefix_pairs, format_context, item_metrics,
                                         mcq_continuation)
from morphcpt.evaluation.sources import sha256_file, sources_manifest_path

RESULT_SCHEMA_KEYS = ("results", "configs", "versions", "n-shot", "n-samples", "config")
METRIC_DEFINITIONS = {
    "acc": "MCQ: 1 if the gold option (scored with the answer terminator) has the highest log-likelihood; "
           "1/k if k options tie for it (no tie-break to index 0)",
    "acc_norm": "MCQ: acc on log-likelihood per character of the option",
    "acc_chance_corrected": "MCQ: (acc - 1/n) / (1 - 1/n) per item, n options",
    "chance": "MCQ: 1/n per item",
    "normalized_match": "GEN (primary): the first generated line, stripped of whitespace and one pair of quotes, "
                        "equals the gold after the item's normalisers",
    "exact_match": "GEN (strict): the same answer equals the gold character for character",
    "prefix_match": "GEN: the answer starts with the gold",
    "contains_match": "GEN: the gold occurs in the first generated line",
}
PACKAGES = ("lm_eval", "torch", "transformers", "datasets", "numpy", "morphcpt")
FORMATS = ("mcq", "gen")
# Worked examples already inside each prompt of a benchmark (CUTE's 4 per prompt): no more are added.
EMBEDDED_SHOTS = {"cute": 4}
GEN_TOKEN_SLACK = 5     # tokens beyond the longest gold: the terminator, quotes, one stray space
MAX_CONTEXT_TOKENS = 2048  # HFLM's window: long enough for every prompt with its shots (checked)
CPU_BATCH_SIZE = 8      # "auto" on CPU: lm-eval's probe needs a GPU out-of-memory error to stop
DTYPE = {"cuda": "bfloat16", "cpu": "float32"}


def group_name(benchmark: str, fmt: str) -> str:
    return f"morphcpt_{benchmark}_{fmt}"


def subtask_of(item: dict[str, Any]) -> str:
    """The reporting unit within a benchmark: hierarchical by level, others by category (PACUTE's
    category, CUTE's task, LangGame's task type; the benchmark itself when the source has none)."""
    if item["benchmark"] == "hierarchical":
        return f"level{item['level']}"
    return re.sub(r"[^a-z0-9]+", "_", str(item["category"]).lower()).strip("_") or item["benchmark"]


def task_name(benchmark: str, fmt: str, subtask: str) -> str:
    return f"{group_name(benchmark, fmt)}_{subtask}"


def _doc_to_text(doc: dict) -> str:
    return format_context(doc["prompt"])


def _doc_to_choice(doc: dict) -> list[str]:
    return [mcq_continuation(c) for c in doc["choices"]]


def _doc_to_gold_index(doc: dict) -> int:
    return doc["gold"]


def _doc_to_answer(doc: dict) -> str:
    return doc["answer"]


def _process_results(doc: dict, results: list) -> dict[str, float]:
    return item_metrics(doc, results)


class _ItemsDataset:
    """lm-eval `custom_dataset`: the scored items as split `test`, the few-shot pool as `train`."""

    def __init__(self, docs: list[dict[str, Any]], pool: list[dict[str, Any]]):
        self.docs = docs
        self.pool = pool

    def __call__(self, **_: Any) -> dict[str, Any]:
        import datasets

        splits = {"test": datasets.Dataset.from_list(self.docs)}
        if self.pool:
            splits["train"] = datasets.Dataset.from_list(self.pool)
        return splits


# How the generated task configs name their callables in the result JSON (lm-eval would write
# their source text or a repr with a memory address).
CALLABLE_NAMES = {"custom_dataset": "morphcpt.evaluation.run._ItemsDataset(scored items; few-shot pool)",
                  "doc_to_text": "morphcpt.evaluation.scoring.format_context(doc['prompt'])",
                  "doc_to_choice": "[option + '\\n' for option in doc['choices']]",
                  "process_results": "morphcpt.evaluation.scoring.item_metrics"}


def shots_of(benchmark: str, fmt: str, num_fewshot: dict[str, int]) -> dict[str, int]:
    """Examples added by lm-eval and examples already in the prompt, for one benchmark format."""
    embedded = EMBEDDED_SHOTS.get(benchmark, 0)
    added = 0 if embedded else int(num_fewshot.get(fmt, 0))
    return {"added": added, "in_prompt": embedded, "total": added + embedded}


def fewshot_pool(docs: list[dict[str, Any]], n: int, seed: int, benchmark: str, fmt: str,
                 subtask: str) -> list[dict[str, Any]]:
    """n items of one subtask drawn with the seed (never scored); none when n is 0."""
    if n == 0:
        return []
    if len(docs) <= n:
        raise MorphcptError(f"{benchmark} {fmt} subtask {subtask!r} has {len(docs)} items: too few for "
                            f"{n}-shot (examples are never scored); lower evaluation.num_fewshot.{fmt}")
    return random.Random(f"{seed}:{benchmark}:{fmt}:{subtask}:fewshot").sample(docs, n)


def plan_tasks(items: list[dict[str, Any]], benchmark: str, *, seed: int, num_fewshot: dict[str, int],
               limit: int | None) -> dict[str, dict[str, dict[str, list]]]:
    """{fmt: {subtask: {"docs": scored items, "pool": few-shot examples}}}. The pool is drawn from
    every item of the subtask; `limit` keeps the first N scored items of each format in file order."""
    plan: dict[str, dict[str, dict[str, list]]] = {}
    for fmt in FORMATS:
        docs = [it for it in items if it["format"] == fmt]
        if not docs:
            continue
        n_shot = shots_of(benchmark, fmt, num_fewshot)["added"]
        by_subtask: dict[str, list] = defaultdict(list)
        for it in docs:
            by_subtask[subtask_of(it)].append(it)
        pools = {s: fewshot_pool(d, n_shot, seed, benchmark, fmt, s) for s, d in by_subtask.items()}
        pooled = {it["id"] for p in pools.values() for it in p}
        scored = [it for it in docs if it["id"] not in pooled][: limit or None]
        kept = {it["id"] for it in scored}
        plan[fmt] = {s: {"docs": [it for it in d if it["id"] in kept], "pool": pools[s]}
                     for s, d in by_subtask.items() if any(it["id"] in kept for it in d)}
    return plan


def gen_token_budget(docs: list[dict[str, Any]], encode: Callable[[str], list[int]] | None, cap: int) -> int:
    """max_gen_toks of a GEN subtask: its longest gold (as the model tokenizes it) plus slack, at most cap."""
    if encode is None:
        return cap
    longest = max(len(encode(TARGET_DELIMITER + it["answer"] + ANSWER_TERMINATOR)) for it in docs)
    return min(cap, longest + GEN_TOKEN_SLACK)


def build_tasks(plan: dict[str, dict[str, dict[str, list]]], benchmark: str, *, num_fewshot: dict[str, int],
                max_gen_tokens: int, encode: Callable[[str], list[int]] | None = None) -> tuple[list[Any], dict]:
    """The lm-eval groups (one per format; micro average) with one ConfigurableTask per subtask, and
    per format the n-shot and per subtask max_gen_toks."""
    from lm_eval.api.group import Group
    from lm_eval.api.task import ConfigurableTask
    from lm_eval.config.group import AggMetricConfig

    groups, settings = [], {}
    for fmt, subtasks in plan.items():
        metrics = MCQ_METRICS if fmt == "mcq" else GEN_METRICS
        shots = shots_of(benchmark, fmt, num_fewshot)
        micro = Group(name=group_name(benchmark, fmt),
                      aggregate_metric_list=[AggMetricConfig(metric=m, weight_by_size=True) for m in metrics],
                      metadata={"version": 2.0})
        gen_toks = {}
        for subtask, part in subtasks.items():
            config: dict[str, Any] = {
                "task": task_name(benchmark, fmt, subtask),
                "custom_dataset": _ItemsDataset(part["docs"], part["pool"]),
                "test_split": "test",
                "doc_to_text": _doc_to_text,
                "process_results": _process_results,
                "metric_list": [{"metric": m, "aggregation": "mean", "higher_is_better": m != "chance"}
                                for m in metrics],
                "num_fewshot": shots["added"],
                "target_delimiter": TARGET_DELIMITER,
                "metadata": {"version": 2.0, "benchmark": benchmark, "format": fmt, "subtask": subtask},
            }
            if shots["added"]:
                # MCQ targets end in the terminator already; both formats give `Answer: X\n\n` per example
                config.update(fewshot_split="train", fewshot_config={"sampler": "default"},
                              fewshot_delimiter="\n" if fmt == "mcq" else "\n\n")
            if fmt == "mcq":
                config.update(output_type="multiple_choice", doc_to_choice=_doc_to_choice,
                              doc_to_target=_doc_to_gold_index)
            else:
                gen_toks[subtask] = gen_token_budget(part["docs"] + part["pool"], encode, max_gen_tokens)
                config.update(output_type="generate_until", doc_to_target=_doc_to_answer,
                              generation_kwargs={"until": list(STOP_SEQUENCES), "do_sample": False,
                                                 "temperature": 0.0, "max_gen_toks": gen_toks[subtask]})
            task = ConfigurableTask(config=config)
            micro.add(task)
        groups.append(micro)
        settings[fmt] = {"n_shot": shots, "max_gen_toks": gen_toks or None}
    return groups, settings


def _name_callables(configs: dict[str, dict]) -> None:
    names = {**CALLABLE_NAMES, "doc_to_target": "doc['gold'] (MCQ) / doc['answer'] (GEN)"}
    for config in configs.values():
        for section in (config, config.get("fewshot_config") or {}):
            for key, name in names.items():
                if section.get(key) is not None:
                    section[key] = name


def hash_model_dir(model_dir: Path) -> dict[str, Any]:
    """sha256 over (relative path, file sha256) of every file, in sorted order."""
    files = sorted(p for p in model_dir.rglob("*") if p.is_file() and not p.name.startswith("."))
    if not files:
        raise MorphcptError(f"{model_dir}: empty model directory")
    digest = hashlib.sha256()
    total = 0
    for p in files:
        digest.update(p.relative_to(model_dir).as_posix().encode() + b"\0" + sha256_file(p).encode() + b"\n")
        total += p.stat().st_size
    return {"sha256": digest.hexdigest(), "files": len(files), "bytes": total}


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in PACKAGES:
        try:
            out[name] = version(name.replace("_", "-") if name == "lm_eval" else name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def _records(samples: dict[str, list[dict]]) -> list[dict]:
    """Compact per-item scores from lm-eval's samples."""
    records = []
    for task, task_samples in sorted(samples.items()):
        for s in task_samples:
            doc = s["doc"]
            fmt = doc["format"]
            metrics = {m: s[m] for m in (MCQ_METRICS if fmt == "mcq" else GEN_METRICS)}
            resp = s["filtered_resps"]
            prediction = ([float(r[0]) for r in resp] if fmt == "mcq"
                          else (resp if isinstance(resp, str) else resp[0]))
            records.append({"id": doc["id"], "format": fmt, "task": task, "subtask": subtask_of(doc),
                            "category": doc["category"], "subcategory": doc["subcategory"], "level": doc["level"],
                            **metrics, "prediction": prediction})
    return records


def _metric_cell(entry: dict[str, Any], metric: str) -> dict[str, float]:
    value = entry.get(f"{metric},none")
    stderr = entry.get(f"{metric}_stderr,none")
    as_float = lambda x: float(x) if isinstance(x, (int, float)) else math.nan  # noqa: E731  ("N/A" -> nan)
    return {"value": as_float(value), "stderr": as_float(stderr)}


def macro_average(cells: list[dict[str, float]]) -> dict[str, float]:
    """Subtasks weighted equally, with lm-eval's group functions (weight_by_size=False)."""
    from lm_eval.api.metrics import aggregate_subtask_metrics, unweighted_mean_stderr

    values = [c["value"] for c in cells]
    stderrs = [c["stderr"] for c in cells]
    value = aggregate_subtask_metrics(values, [1] * len(values), weight_by_size=False)
    stderr = unweighted_mean_stderr(stderrs) if len(cells) > 1 and not any(map(math.isnan, stderrs)) else math.nan
    return {"value": float(value), "stderr": float(stderr)}


def summarize(result: dict[str, Any], benchmark: str, plan: dict, settings: dict) -> dict[str, Any]:
    """Per format: micro and macro averages and each subtask, every metric as value ± stderr, with n."""
    summary = {}
    for fmt, subtasks in plan.items():
        metrics = MCQ_METRICS if fmt == "mcq" else GEN_METRICS
        micro = result["results"][group_name(benchmark, fmt)]
        per_subtask = {}
        for subtask in subtasks:
            name = task_name(benchmark, fmt, subtask)
            per_subtask[subtask] = {"n": result["n-samples"][name]["effective"],
                                    **{m: _metric_cell(result["results"][name], m) for m in metrics}}
        summary[fmt] = {
            "primary_metric": PRIMARY_METRIC[fmt],
            "n": sum(s["n"] for s in per_subtask.values()),
            "n_shot": settings[fmt]["n_shot"],
            "max_gen_toks": settings[fmt]["max_gen_toks"],
            "micro": {m: _metric_cell(micro, m) for m in metrics},
            "macro": {m: macro_average([per_subtask[s][m] for s in per_subtask]) for m in metrics},
            "subtasks": per_subtask,
        }
    return summary


def score_items(lm: Any, items: list[dict[str, Any]], benchmark: str, *, seed: int, max_gen_tokens: int,
                limit: int | None = None, num_fewshot: dict[str, int] | None = None,
                encode: Callable[[str], list[int]] | None = None) -> dict[str, Any]:
    """Run lm-eval's `simple_evaluate` with the generated groups on an LM object (HFLM or any
    `lm_eval.api.model.LM`); return the JSON-serializable result with `summary` and `item_scores`.
    `encode` (the model's tokenizer, no special tokens) sizes max_gen_toks and counts prefix pairs."""
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager
    from lm_eval.utils import handle_non_serializable

    num_fewshot = {"mcq": 0, "gen": 0, **(num_fewshot or {})}
    plan = plan_tasks(items, benchmark, seed=seed, num_fewshot=num_fewshot, limit=limit)
    groups, settings = build_tasks(plan, benchmark, num_fewshot=num_fewshot, max_gen_tokens=max_gen_tokens,
                                   encode=encode)
    prefix_pairs = None
    if encode is not None:
        scored = [it for parts in plan.get("mcq", {}).values() for it in parts["docs"]]
        prefix_pairs = count_prefix_pairs(scored, encode)
        if prefix_pairs["items_with_terminator"]:
            raise MorphcptError(f"{benchmark}: with the answer terminator, options of "
                                f"{prefix_pairs['ids_with_terminator'][:5]} are still token prefixes of each "
                                "other under this tokenizer; their scores would be biased by length")
    raw = simple_evaluate(model=lm, tasks=groups, task_manager=TaskManager(include_defaults=False),
                          limit=None, bootstrap_iters=1000, log_samples=True,
                          random_seed=seed, numpy_random_seed=seed, torch_random_seed=seed,
                          fewshot_random_seed=seed)
    if raw is None:
        raise MorphcptError("lm-eval returned no results (non-zero rank?)")
    samples = raw.pop("samples")
    result = json.loads(json.dumps(raw, default=handle_non_serializable))
    _name_callables(result.get("configs", {}))
    result["item_scores"] = _records(samples)
    result["summary"] = summarize(result, benchmark, plan, settings)
    # lm-eval counts only the examples it adds; CUTE's prompts hold 4 of their own
    for fmt, subtasks in plan.items():
        for name in [group_name(benchmark, fmt)] + [task_name(benchmark, fmt, s) for s in subtasks]:
            result["n-shot"][name] = settings[fmt]["n_shot"]["total"]
    result["prefix_pairs"] = prefix_pairs
    missing = [k for k in RESULT_SCHEMA_KEYS if k not in result]
    if missing:
        raise MorphcptError(f"lm-eval result lacks {missing}; is lm-eval 0.4.13 installed?")
    return result


# -- the model ------------------------------------------------------------------------------------
def resolve_device(device: str | None, gpus: int | None = None) -> str:
    """The device to score on. A job given GPUs (`gpus` > 0) that sees no CUDA is an error: without
    it an 8B model would silently run on CPU into its time limit."""
    import torch

    if gpus:
        if not torch.cuda.is_available():
            raise MorphcptError(
                f"evaluate was given {gpus} GPU(s) but torch {torch.__version__} sees no CUDA "
                f"(CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}, torch built with "
                f"CUDA {torch.version.cuda}); use the envs/eval.yaml environment (CUDA torch) or set "
                "resources.evaluate.gpu: 0 to evaluate on CPU")
        return device or "cuda"
    if device:
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def load_lm(model_dir: str | Path, *, device: str, batch_size: int | str = "auto") -> tuple[Any, dict[str, Any]]:
    """lm-eval's HFLM for an HF folder, loaded once: bfloat16 on GPU and float32 on CPU for every
    model (base and exports alike), BOS first, a bounded window that never truncates silently."""
    from lm_eval.models.huggingface import HFLM

    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise MorphcptError(f"{model_dir}: not an HF model directory (no config.json)")
    dtype = DTYPE["cuda" if device.startswith("cuda") else "cpu"]
    if batch_size == "auto" and not device.startswith("cuda"):
        batch_size = CPU_BATCH_SIZE
    config = json.loads((model_dir / "config.json").read_text())
    model_type = config.get("model_type", "")
    max_length = min(MAX_CONTEXT_TOKENS, int(config.get("max_position_embeddings") or MAX_CONTEXT_TOKENS))
    # Every CPT document starts with BOS: score with BOS, whatever the tokenizer's default.
    model_kwargs: dict[str, Any] = {"add_bos_token": True}
    if model_type.startswith("gemma2"):
        # SDPA drops Gemma 2's attention-logit soft-capping (wrong scores); eager applies it.
        model_kwargs["attn_implementation"] = "eager"
    lm = HFLM(pretrained=str(model_dir), device=device, batch_size=batch_size, max_batch_size=256, dtype=dtype,
              max_length=max_length, truncation=False, **model_kwargs)
    setup = {"device": device, "dtype": dtype, "batch_size": batch_size, "max_length": max_length,
             "model_type": model_type, "model_kwargs": model_kwargs}
    return lm, setup


def tokenizer_encoder(lm: Any) -> Callable[[str], list[int]]:
    """The model's tokenizer as HFLM uses it for continuations (no special tokens)."""
    tokenizer = lm.tokenizer
    return lambda text: tokenizer.encode(text, add_special_tokens=False)


def check_context_budget(items: list[dict[str, Any]], encode: Callable[[str], list[int]], n_shot: int,
                         max_gen_tokens: int, max_length: int, benchmark: str) -> None:
    """The longest prompt with its shots and answer must fit the window (lm-eval would cut its start)."""
    longest = max(len(encode(format_context(it["prompt"]) + TARGET_DELIMITER
                             + (max(it["choices"], key=len) if it["format"] == "mcq" else it["answer"])))
                  for it in items)
    need = longest * (n_shot + 1) + max_gen_tokens + 1
    if need > max_length:
        raise MorphcptError(f"{benchmark}: a prompt with {n_shot} shots needs up to {need} tokens, more than the "
                            f"window of {max_length}; lower evaluation.num_fewshot")


def evaluate_checkpoint(model_dir: str | Path, items_paths: dict[str, str | Path], *, seed: int,
                        batch_size: int | str, max_gen_tokens: int, num_fewshot: dict[str, int],
                        limit: int | None = None, device: str | None = None, gpus: int | None = None,
                        extra_provenance: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Load one HF model once and score it on every benchmark; {benchmark: result with provenance}."""
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise MorphcptError(f"{model_dir}: not an HF model directory (no config.json)")
    all_items = {}
    for benchmark, path in items_paths.items():
        items = read_items(path)
        wrong = {it["benchmark"] for it in items} - {benchmark}
        if wrong:
            raise MorphcptError(f"{path}: items of {sorted(wrong)}, expected only {benchmark!r}")
        all_items[benchmark] = items
    device = resolve_device(device, gpus)
    lm, setup = load_lm(model_dir, device=device, batch_size=batch_size)
    encode = tokenizer_encoder(lm)
    for benchmark, items in all_items.items():
        n_shot = max(shots_of(benchmark, f, num_fewshot)["added"] for f in FORMATS)
        check_context_budget(items, encode, n_shot, max_gen_tokens, setup["max_length"], benchmark)
    model_hash = hash_model_dir(model_dir)
    results = {}
    for benchmark, items in all_items.items():
        result = score_items(lm, items, benchmark, seed=seed, max_gen_tokens=max_gen_tokens, limit=limit,
                             num_fewshot=num_fewshot, encode=encode)
        items_path = Path(items_paths[benchmark])
        sources_path = sources_manifest_path(items_path)
        result["provenance"] = {
            "model_dir": str(model_dir),
            "model": model_hash,
            "benchmark": benchmark,
            "items_path": str(items_path),
            "items_sha256": sha256_file(items_path),
            "items_total": len(items),
            "sources": json.loads(sources_path.read_text()) if sources_path.is_file() else None,
            "packages": package_versions(),
            "seeds": {"python": seed, "numpy": seed, "torch": seed, "fewshot": seed},
            **setup,
            "batch_sizes_found": list(getattr(lm, "batch_sizes", {}).values()),
            "max_gen_tokens_cap": max_gen_tokens, "limit": limit, "num_fewshot": dict(num_fewshot),
            "stop_sequences": list(STOP_SEQUENCES), "answer_terminator": ANSWER_TERMINATOR,
            "normalisers": {name: doc for name, (doc, _) in NORMALISERS.items()},
            "metric_definitions": METRIC_DEFINITIONS,
            **(extra_provenance or {}),
        }
        results[benchmark] = result
    return results


def evaluate_model(model_dir: str | Path, items_path: str | Path, benchmark: str, *, seed: int,
                   batch_size: int | str, max_gen_tokens: int, limit: int | None = None,
                   num_fewshot: dict[str, int] | None = None, device: str | None = None,
                   extra_provenance: dict[str, Any] | None = None) -> dict[str, Any]:
    """Score an HF model directory on one benchmark's items (the `morphcpt eval` CLI)."""
    return evaluate_checkpoint(model_dir, {benchmark: items_path}, seed=seed, batch_size=batch_size,
                               max_gen_tokens=max_gen_tokens, num_fewshot=num_fewshot or {"mcq": 0, "gen": 0},
                               limit=limit, device=device, extra_provenance=extra_provenance)[benchmark]


def write_result(result: dict[str, Any], out_path: str | Path) -> None:
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    os.replace(tmp, out_path)


def summary_lines(result: dict[str, Any]) -> list[str]:
    lines = []
    benchmark = (result.get("provenance") or {}).get("benchmark", "")
    for fmt, s in result["summary"].items():
        m = s["primary_metric"]
        lines.append(f"{benchmark} {fmt} ({s['n_shot']['total']}-shot, n={s['n']}): {m} "
                     f"micro={s['micro'][m]['value']:.4f} macro={s['macro'][m]['value']:.4f}")
    return lines


# -- CLI: morphcpt eval --------------------------------------------------------------------------
def _batch_size(text: str) -> int | str:
    return text if text == "auto" else int(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="HF model directory (config.json, weights, tokenizer)")
    parser.add_argument("--benchmark", required=True)
    parser.add_argument("--items", required=True, help="normalized items (morphcpt benchmark-items)")
    parser.add_argument("--output", required=True, help="result JSON")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--batch-size", type=_batch_size, default="auto", help="an integer or auto (GPU probe)")
    parser.add_argument("--max-gen-tokens", type=int, default=64, help="upper bound of max_gen_toks")
    parser.add_argument("--mcq-shots", type=int, default=0, help="few-shot examples per MCQ prompt")
    parser.add_argument("--gen-shots", type=int, default=0, help="few-shot examples per GEN prompt")
    parser.add_argument("--limit", type=int, default=None, help="score the first N items of each format")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:0 (default: cuda if available)")


def run(args: argparse.Namespace) -> int:
    result = evaluate_model(args.model, args.items, args.benchmark, seed=args.seed, batch_size=args.batch_size,
                            max_gen_tokens=args.max_gen_tokens, limit=args.limit, device=args.device,
                            num_fewshot={"mcq": args.mcq_shots, "gen": args.gen_shots})
    write_result(result, args.output)
    for line in summary_lines(result):
        print(line)
    return 0


def evaluate_stage(smk: Any) -> None:
    """The evaluate rule: one model, every benchmark. Mode `base` (step 0): `input.model` is the HF
    manifest and its folder the model; otherwise `input.model` is the exported HF folder (gated by
    its parity report). Outputs `output.results` in the order of `params.benchmarks`."""
    mode, step = smk.wildcards.eval_mode, int(smk.wildcards.step)
    model = Path(smk.input.model)
    if mode == "base":
        if step != 0:
            raise MorphcptError(f"the base model is evaluated at step 0 only, not step {step}")
        model_dir = model.parent
    else:
        model_dir = model
    import torch

    torch.set_num_threads(max(1, int(smk.threads)))  # CPU runs: stay within the job's cores
    ev = smk.params.evaluation
    benchmarks = list(smk.params.benchmarks)
    items_paths = dict(zip(benchmarks, smk.input.benchmark_items))
    outputs = dict(zip(benchmarks, smk.output.results))
    extra = {"family": smk.wildcards.family, "mode": mode, "step": step}
    if mode != "base":
        extra["export_parity"] = str(smk.input.parity)
    shots = ev.get("num_fewshot") or {}
    results = evaluate_checkpoint(model_dir, items_paths, seed=int(ev.get("seed", 1234)),
                                  batch_size=ev.get("batch_size", "auto"),
                                  max_gen_tokens=int(ev.get("max_gen_tokens", 64)),
                                  num_fewshot={"mcq": int(shots.get("mcq", 0)), "gen": int(shots.get("gen", 0))},
                                  limit=ev.get("limit"), gpus=int(getattr(smk.resources, "gpu", 0) or 0),
                                  extra_provenance=extra)
    for benchmark, result in results.items():
        write_result(result, outputs[benchmark])
        for line in summary_lines(result):
            print(line)
