"""Score an HF model directory on one benchmark with lm-evaluation-harness.

The package generates the task definitions: one `ConfigurableTask` per format present in the
items file (`morphcpt_<benchmark>_mcq`: multiple_choice on log-likelihoods;
`morphcpt_<benchmark>_gen`: greedy generate_until with a stop sequence), with our per-item
metrics (`scoring.item_metrics`) as `process_results`, so MCQ ties and answer extraction are
handled the same way for every model. The model runs through lm-eval's HFLM (CPU or GPU).

Output: lm-eval's results dictionary (`results`, `configs`, `versions`, `n-shot`, `n-samples`,
`config`, ...) without its bulky `samples`, plus
- `provenance`: model directory sha256, items sha256 and sources manifest, package versions,
  seeds, batch size, device, dtype, limit;
- `breakdown`: primary metric per (task, category);
- `item_scores`: per item id its metrics and the prediction (generated text / log-likelihoods).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

from morphcpt.errors import MorphcptError
from morphcpt.evaluation.items import read_items
from morphcpt.evaluation.scoring import (GEN_METRICS, MCQ_METRICS, PRIMARY_METRIC, STOP_SEQUENCES,
                                         format_context, item_metrics)
from morphcpt.evaluation.sources import sha256_file, sources_manifest_path

RESULT_SCHEMA_KEYS = ("results", "configs", "versions", "n-shot", "n-samples", "config")
METRIC_DEFINITIONS = {
    "acc": "MCQ: 1 if the gold choice has the highest log-likelihood; 1/k if k choices tie for it (no tie-break to index 0)",
    "acc_norm": "MCQ: acc on log-likelihood per character of the choice",
    "acc_chance_corrected": "MCQ: (acc - 1/n) / (1 - 1/n) per item, n choices",
    "chance": "MCQ: 1/n per item",
    "exact_match": "GEN (primary): answer extracted from the first generated line == gold (case-sensitive)",
    "prefix_match": "GEN: extracted answer starts with the gold",
    "contains_match": "GEN: the gold occurs in the first generated line",
}
PACKAGES = ("lm_eval", "torch", "transformers", "datasets", "numpy", "morphcpt")


def task_name(benchmark: str, fmt: str) -> str:
    return f"morphcpt_{benchmark}_{fmt}"


def _doc_to_text(doc: dict) -> str:
    return format_context(doc["prompt"])


def _doc_to_choice(doc: dict) -> list[str]:
    return list(doc["choices"])


def _doc_to_gold_index(doc: dict) -> int:
    return doc["gold"]


def _doc_to_answer(doc: dict) -> str:
    return doc["answer"]


def _process_results(doc: dict, results: list) -> dict[str, float]:
    return item_metrics(doc, results)


class _ItemsDataset:
    """lm-eval `custom_dataset`: the task's items as an HF dataset with one `test` split."""

    def __init__(self, docs: list[dict[str, Any]]):
        self.docs = docs

    def __call__(self, **_: Any) -> dict[str, Any]:
        import datasets

        return {"test": datasets.Dataset.from_list(self.docs)}


# How the generated task configs name their callables in the result JSON (lm-eval would write
# their source text or a repr with a memory address).
CALLABLE_NAMES = {"custom_dataset": "morphcpt.evaluation.run._ItemsDataset(items of the format)",
                  "doc_to_text": "morphcpt.evaluation.scoring.format_context(doc['prompt'])",
                  "doc_to_choice": "doc['choices']", "process_results": "morphcpt.evaluation.scoring.item_metrics"}


def build_tasks(items: list[dict[str, Any]], benchmark: str, max_gen_tokens: int) -> list[Any]:
    """One lm-eval ConfigurableTask per format (mcq, gen) present in `items`."""
    from lm_eval.api.task import ConfigurableTask

    tasks = []
    for fmt in ("mcq", "gen"):
        docs = [it for it in items if it["format"] == fmt]
        if not docs:
            continue
        metrics = MCQ_METRICS if fmt == "mcq" else GEN_METRICS
        config: dict[str, Any] = {
            "task": task_name(benchmark, fmt),
            "custom_dataset": _ItemsDataset(docs),
            "test_split": "test",
            "doc_to_text": _doc_to_text,
            "process_results": _process_results,
            "metric_list": [{"metric": m, "aggregation": "mean", "higher_is_better": m != "chance"}
                            for m in metrics],
            "num_fewshot": 0,
            "metadata": {"version": 1.0, "benchmark": benchmark, "format": fmt},
        }
        if fmt == "mcq":
            config.update(output_type="multiple_choice", doc_to_choice=_doc_to_choice,
                          doc_to_target=_doc_to_gold_index, target_delimiter=" ")
        else:
            config.update(output_type="generate_until", doc_to_target=_doc_to_answer,
                          generation_kwargs={"until": list(STOP_SEQUENCES), "do_sample": False,
                                             "temperature": 0.0, "max_gen_toks": max_gen_tokens})
        tasks.append(ConfigurableTask(config=config))
    return tasks


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


def _records(samples: dict[str, list[dict]]) -> tuple[list[dict], dict[str, dict]]:
    """Compact per-item scores and the per-category breakdown from lm-eval's samples."""
    records = []
    groups: dict[tuple[str, str], list[float]] = defaultdict(list)
    for task, task_samples in samples.items():
        for s in task_samples:
            doc = s["doc"]
            fmt = doc["format"]
            metrics = {m: s[m] for m in (MCQ_METRICS if fmt == "mcq" else GEN_METRICS)}
            resp = s["filtered_resps"]
            prediction = ([float(r[0]) for r in resp] if fmt == "mcq"
                          else (resp if isinstance(resp, str) else resp[0]))
            records.append({"id": doc["id"], "task": task, "category": doc["category"],
                            "subcategory": doc["subcategory"], "level": doc["level"], **metrics,
                            "prediction": prediction})
            groups[(task, str(doc["category"]))].append(metrics[PRIMARY_METRIC[fmt]])
    breakdown: dict[str, dict] = defaultdict(dict)
    for (task, category), values in sorted(groups.items()):
        breakdown[task][category] = {"n": len(values), "mean": sum(values) / len(values)}
    return records, dict(breakdown)


def resolve_device(device: str | None) -> str:
    if device:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def score_items(lm: Any, items: list[dict[str, Any]], benchmark: str, *, seed: int, max_gen_tokens: int,
                limit: int | None = None) -> dict[str, Any]:
    """Run lm-eval's `simple_evaluate` with the generated tasks on an LM object (HFLM or any
    `lm_eval.api.model.LM`); return the JSON-serializable result with `breakdown` and `item_scores`."""
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager
    from lm_eval.utils import handle_non_serializable

    tasks = build_tasks(items, benchmark, max_gen_tokens)
    raw = simple_evaluate(model=lm, tasks=tasks, task_manager=TaskManager(include_defaults=False),
                          limit=limit, bootstrap_iters=1000, log_samples=True,
                          random_seed=seed, numpy_random_seed=seed, torch_random_seed=seed,
                          fewshot_random_seed=seed)
    if raw is None:
        raise MorphcptError("lm-eval returned no results (non-zero rank?)")
    samples = raw.pop("samples")
    result = json.loads(json.dumps(raw, default=handle_non_serializable))
    _name_callables(result.get("configs", {}))
    result["item_scores"], result["breakdown"] = _records(samples)
    missing = [k for k in RESULT_SCHEMA_KEYS if k not in result]
    if missing:
        raise MorphcptError(f"lm-eval result lacks {missing}; is lm-eval 0.4.13 installed?")
    return result


def evaluate_model(model_dir: str | Path, items_path: str | Path, benchmark: str, *, seed: int,
                   batch_size: int, max_gen_tokens: int, limit: int | None = None,
                   device: str | None = None, dtype: str | None = None,
                   extra_provenance: dict[str, Any] | None = None) -> dict[str, Any]:
    """Score an HF model directory (lm-eval HFLM) on one benchmark's items; add provenance."""
    model_dir = Path(model_dir)
    if not (model_dir / "config.json").is_file():
        raise MorphcptError(f"{model_dir}: not an HF model directory (no config.json)")
    items = read_items(items_path)
    wrong = {it["benchmark"] for it in items} - {benchmark}
    if wrong:
        raise MorphcptError(f"{items_path}: items of {sorted(wrong)}, expected only {benchmark!r}")
    from lm_eval.models.huggingface import HFLM

    device = resolve_device(device)
    dtype = dtype or ("auto" if device.startswith("cuda") else "float32")
    model_type = json.loads((model_dir / "config.json").read_text()).get("model_type", "")
    # Every CPT document starts with BOS (DESIGN §3): score with BOS, whatever the tokenizer's default.
    model_kwargs: dict[str, Any] = {"add_bos_token": True}
    if model_type.startswith("gemma2"):
        # SDPA drops Gemma 2's attention-logit soft-capping (wrong scores); eager applies it.
        model_kwargs["attn_implementation"] = "eager"
    lm = HFLM(pretrained=str(model_dir), device=device, batch_size=batch_size, dtype=dtype, **model_kwargs)
    result = score_items(lm, items, benchmark, seed=seed, max_gen_tokens=max_gen_tokens, limit=limit)
    sources_path = sources_manifest_path(items_path)
    result["provenance"] = {
        "model_dir": str(model_dir),
        "model": hash_model_dir(model_dir),
        "benchmark": benchmark,
        "items_path": str(items_path),
        "items_sha256": sha256_file(items_path),
        "items_total": len(items),
        "sources": json.loads(sources_path.read_text()) if sources_path.is_file() else None,
        "packages": package_versions(),
        "seeds": {"python": seed, "numpy": seed, "torch": seed, "fewshot": seed},
        "batch_size": batch_size, "max_gen_tokens": max_gen_tokens, "limit": limit,
        "device": device, "dtype": dtype, "stop_sequences": list(STOP_SEQUENCES), "model_type": model_type,
        "model_kwargs": model_kwargs,
        "metric_definitions": METRIC_DEFINITIONS,
        **(extra_provenance or {}),
    }
    return result


def write_result(result: dict[str, Any], out_path: str | Path) -> None:
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(out_path.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    os.replace(tmp, out_path)


def summary_lines(result: dict[str, Any]) -> list[str]:
    lines = []
    for task, metrics in sorted(result["results"].items()):
        shown = [f"{k.split(',')[0]}={v:.4f}" for k, v in metrics.items()
                 if isinstance(v, float) and "_stderr" not in k]
        lines.append(f"{task}: n={result['n-samples'][task]['effective']} " + " ".join(shown))
    return lines


# -- CLI: morphcpt eval --------------------------------------------------------------------------
def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="HF model directory (config.json, weights, tokenizer)")
    parser.add_argument("--benchmark", required=True)
    parser.add_argument("--items", required=True, help="normalized items (morphcpt benchmark-items)")
    parser.add_argument("--output", required=True, help="result JSON")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-gen-tokens", type=int, default=32)
    parser.add_argument("--limit", type=int, default=None, help="score the first N items of each format")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:0 (default: cuda if available)")
    parser.add_argument("--dtype", default=None, help="default: auto on GPU, float32 on CPU")


def run(args: argparse.Namespace) -> int:
    result = evaluate_model(args.model, args.items, args.benchmark, seed=args.seed, batch_size=args.batch_size,
                            max_gen_tokens=args.max_gen_tokens, limit=args.limit, device=args.device,
                            dtype=args.dtype)
    write_result(result, args.output)
    for line in summary_lines(result):
        print(line)
    return 0


def evaluate_stage(smk: Any) -> None:
    """The evaluate rule. Mode `base` (step 0): `input.model` is the HF manifest and its folder the
    model; otherwise `input.model` is the exported HF folder (gated by its parity report)."""
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
    extra = {"family": smk.wildcards.family, "mode": mode, "step": step}
    if mode != "base":
        extra["export_parity"] = str(smk.input.parity)
    result = evaluate_model(model_dir, smk.input.benchmark_items, smk.wildcards.benchmark,
                            seed=int(ev.get("seed", 1234)), batch_size=int(ev.get("batch_size", 8)),
                            max_gen_tokens=int(ev.get("max_gen_tokens", 32)), limit=ev.get("limit"),
                            extra_provenance=extra)
    write_result(result, smk.output.result)
    for line in summary_lines(result):
        print(line)
