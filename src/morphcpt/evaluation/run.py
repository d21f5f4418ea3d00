"""Score an HF model directory on the benchmarks with lm-evaluation-harness (`morphcpt eval`, the
evaluate rule).

Per benchmark, `task_folder` writes an lm-eval task folder (YAML, data with each item's full
context, `utils.py`) and lm-eval scores exactly that folder through its TaskManager, so
`lm_eval --model hf --model_args <model_args> --tasks <groups> --include_path <folder>` (the command in
the folder's README and in the result's `reproduce`) reruns the same tasks. Each benchmark format
is an lm-eval group (`morphcpt_<benchmark>_<fmt>`, micro average) of one task per subtask (PACUTE
category, hierarchical level, CUTE task, LangGame task type). MCQ tasks are multiple_choice on
log-likelihoods of ` option\\n\\n` (the terminator every few-shot answer ends with: see `scoring`);
GEN tasks are greedy generate_until the newline, `max_gen_toks` from the longest gold of the
subtask. Our per-item metrics (`scoring.item_metrics`) are `process_results`.

Few-shot (`fewshot`): `num_fewshot[fmt]` examples of the item's own question type, drawn per item
with the seed, never the item itself, written into its context. CUTE's prompts already hold 4
worked examples (`EMBEDDED_SHOTS`), so nothing is added to them and their n-shot is 4.

One model load scores every benchmark (`evaluate_checkpoint`); the dtype is bfloat16 on GPU and
float32 on CPU for every model alike, the batch size is found by lm-eval on GPU ("auto").

Output per benchmark (strict JSON: no NaN): lm-eval's results dictionary (`results`, `groups`,
`group_subtasks`, `configs` as the YAMLs define them, `versions`, `n-shot` (examples in the prompt),
`n-samples`, and `config` with the true model_args, batch size, device and limit), plus
- `summary` (`summary`): per format micro, macro, subtasks and question types, n-shot, max_gen_toks;
- `prefix_pairs`: MCQ items whose options are token prefixes of each other under the model's
  tokenizer, without the terminator (the bias it removes) and with it (always 0; else an error);
- `provenance`: model directory sha256, items sha256 and sources manifest, package versions,
  seeds, batch size, device, dtype, limit, normalisers, the task folder;
- `reproduce`: the lm_eval command line;
- `item_scores`: per item id its question type, example ids, metrics and prediction (the prompt is
  the item's `context` in the task folder).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable

from morphcpt.errors import MorphcptError
from morphcpt.fileio import write_json_atomic
from morphcpt.evaluation.items import read_items
from morphcpt.evaluation.scoring import (ANSWER_TERMINATOR, NORMALISERS, STOP_SEQUENCES, TARGET_DELIMITER,
                                         count_prefix_pairs)
from morphcpt.evaluation.sources import sha256_file, sources_manifest_path
from morphcpt.evaluation.summary import item_records, strict_json, summarize, summary_lines
from morphcpt.evaluation.task_folder import (group_name, plan_tasks, reproduce_command, task_folder_of,
                                             write_readme, write_task_folder)

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
MAX_CONTEXT_TOKENS = 2048  # HFLM's window: long enough for every prompt with its shots (checked)
CPU_BATCH_SIZE = 8      # "auto" on CPU: lm-eval's probe needs a GPU out-of-memory error to stop
DTYPE = {"cuda": "bfloat16", "cpu": "float32"}
# `morphcpt eval` defaults = the pipeline's (config/schema.yaml evaluation.*)
DEFAULT_SEED = 1234
DEFAULT_SHOTS = 3
DEFAULT_MAX_GEN_TOKENS = 64


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



def check_context_budget(plan: dict[str, Any], encode: Callable[[str], list[int]], max_gen_tokens: int,
                         max_length: int, benchmark: str) -> None:
    """The longest context with its answer must fit the window (lm-eval would cut its start)."""
    need = 0
    for part in plan.values():
        for rows in part["subtasks"].values():
            for r in rows:
                answer = max(r["continuations"], key=len) if r["format"] == "mcq" else r["answer"]
                extra = 0 if r["format"] == "mcq" else max_gen_tokens
                need = max(need, len(encode(r["context"] + TARGET_DELIMITER + answer)) + extra + 1)
    if need > max_length:
        raise MorphcptError(f"{benchmark}: a prompt with its examples needs up to {need} tokens, more than the "
                            f"window of {max_length}; lower evaluation.num_fewshot")


def score_items(lm: Any, items: list[dict[str, Any]], benchmark: str, *, seed: int, max_gen_tokens: int,
                limit: int | None = None, num_fewshot: dict[str, int] | None = None,
                encode: Callable[[str], list[int]] | None = None,
                task_dir: str | Path | None = None) -> dict[str, Any]:
    """Write the task folder (`task_dir`; a temporary one if None) and score it with lm-eval's
    `simple_evaluate` on an LM object (HFLM or any `lm_eval.api.model.LM`); return the
    JSON-serializable result with `summary` and `item_scores`. `encode` (the model's tokenizer, no
    special tokens) sizes max_gen_toks and counts prefix pairs."""
    num_fewshot = {"mcq": 0, "gen": 0, **(num_fewshot or {})}
    plan = plan_tasks(items, benchmark, seed=seed, num_fewshot=num_fewshot, limit=limit)
    prefix_pairs = None
    if encode is not None:
        scored = [r for rows in plan.get("mcq", {}).get("subtasks", {}).values() for r in rows]
        prefix_pairs = count_prefix_pairs(scored, encode)
        if prefix_pairs["items_with_terminator"]:
            raise MorphcptError(f"{benchmark}: with the answer terminator, options of "
                                f"{prefix_pairs['ids_with_terminator'][:5]} are still token prefixes of each "
                                "other under this tokenizer; their scores would be biased by length")
    if task_dir is None:
        with tempfile.TemporaryDirectory(prefix=f"morphcpt-{benchmark}-tasks-") as tmp:
            return _score_folder(lm, plan, benchmark, Path(tmp), seed, max_gen_tokens, encode, prefix_pairs)
    return _score_folder(lm, plan, benchmark, Path(task_dir), seed, max_gen_tokens, encode, prefix_pairs)


def _score_folder(lm: Any, plan: dict[str, Any], benchmark: str, folder: Path, seed: int, max_gen_tokens: int,
                  encode: Callable[[str], list[int]] | None, prefix_pairs: dict | None) -> dict[str, Any]:
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager
    from lm_eval.utils import handle_non_serializable

    settings = write_task_folder(folder, plan, benchmark, seed=seed, max_gen_tokens=max_gen_tokens, encode=encode)
    groups = [s["group"] for s in settings.values()]
    raw = simple_evaluate(model=lm, tasks=groups,
                          task_manager=TaskManager(include_path=str(folder), include_defaults=False),
                          limit=None, bootstrap_iters=1000, log_samples=True,
                          random_seed=seed, numpy_random_seed=seed, torch_random_seed=seed,
                          fewshot_random_seed=seed)
    if raw is None:
        raise MorphcptError("lm-eval returned no results (non-zero rank?)")
    samples = raw.pop("samples")
    result = json.loads(json.dumps(raw, default=handle_non_serializable))
    result["item_scores"] = item_records(samples)
    result["summary"] = summarize(result, result["item_scores"], benchmark, settings)
    # lm-eval counts the examples it adds (none: they are in each item's context)
    for fmt, s in settings.items():
        for name in [group_name(benchmark, fmt)] + s["tasks"]:
            result["n-shot"][name] = s["n_shot"]["total"]
    result["prefix_pairs"] = prefix_pairs
    result["task_folder"] = {"path": str(folder), "groups": groups}
    missing = [k for k in RESULT_SCHEMA_KEYS if k not in result]
    if missing:
        raise MorphcptError(f"lm-eval result lacks {missing}; is lm-eval 0.4.13 installed?")
    return strict_json(result)



def model_args_of(model_dir: str | Path, setup: dict[str, Any]) -> str:
    """HFLM's arguments as lm_eval's `--model_args` (what load_lm passes)."""
    args = {"pretrained": str(model_dir), "dtype": setup["dtype"], "max_length": setup["max_length"],
            "truncation": False, **setup["model_kwargs"]}
    return ",".join(f"{k}={v}" for k, v in args.items())


def evaluate_checkpoint(model_dir: str | Path, items_paths: dict[str, str | Path], *, seed: int,
                        batch_size: int | str, max_gen_tokens: int, num_fewshot: dict[str, int],
                        task_dirs: dict[str, str | Path], limit: int | None = None, device: str | None = None,
                        gpus: int | None = None,
                        extra_provenance: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
    """Load one HF model once and score it on every benchmark; {benchmark: result with provenance}.
    `task_dirs`: per benchmark, where its lm-eval task folder is written."""
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
    # every benchmark's prompts must fit the window before any is scored (fail in seconds, not after hours)
    for benchmark, items in all_items.items():
        check_context_budget(plan_tasks(items, benchmark, seed=seed, num_fewshot=num_fewshot, limit=limit),
                             encode, max_gen_tokens, setup["max_length"], benchmark)
    model_hash = hash_model_dir(model_dir)
    model_args = model_args_of(model_dir, setup)
    results = {}
    for benchmark, items in all_items.items():
        result = score_items(lm, items, benchmark, seed=seed, max_gen_tokens=max_gen_tokens, limit=limit,
                             num_fewshot=num_fewshot, encode=encode, task_dir=task_dirs[benchmark])
        # lm-eval's `config` block describes the LM object it was handed; make it true
        result["config"].update(model="hf", model_args=model_args, batch_size=setup["batch_size"],
                                batch_sizes=list(getattr(lm, "batch_sizes", {}).values()), device=device,
                                limit=limit, limit_applied_by="morphcpt: the first N items of each format are "
                                "written to the task folder; lm-eval ran without --limit")
        result["reproduce"] = reproduce_command(task_dirs[benchmark], result["task_folder"]["groups"], model_args,
                                                setup["batch_size"], device)
        write_readme(task_dirs[benchmark], benchmark, result["task_folder"]["groups"], result["reproduce"])
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
        results[benchmark] = strict_json(result)
    return results


def evaluate_model(model_dir: str | Path, items_path: str | Path, benchmark: str, *, seed: int,
                   batch_size: int | str, max_gen_tokens: int, task_dir: str | Path, limit: int | None = None,
                   num_fewshot: dict[str, int] | None = None, device: str | None = None,
                   extra_provenance: dict[str, Any] | None = None) -> dict[str, Any]:
    """Score an HF model directory on one benchmark's items (the `morphcpt eval` CLI)."""
    return evaluate_checkpoint(model_dir, {benchmark: items_path}, seed=seed, batch_size=batch_size,
                               max_gen_tokens=max_gen_tokens, num_fewshot=num_fewshot or {"mcq": 0, "gen": 0},
                               task_dirs={benchmark: task_dir}, limit=limit, device=device,
                               extra_provenance=extra_provenance)[benchmark]


def write_result(result: dict[str, Any], out_path: str | Path) -> None:
    """Strict JSON (no NaN), written atomically (a full disk leaves no temporary file: NoSpaceError)."""
    write_json_atomic(out_path, strict_json(result), allow_nan=False)


# -- CLI: morphcpt eval --------------------------------------------------------------------------
def _batch_size(text: str) -> int | str:
    return text if text == "auto" else int(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="HF model directory (config.json, weights, tokenizer)")
    parser.add_argument("--benchmark", required=True)
    parser.add_argument("--items", required=True, help="normalized items (morphcpt benchmark-items)")
    parser.add_argument("--output", required=True,
                        help="result JSON; the lm-eval task folder is written next to it (<name>.lm_eval_tasks/)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"default {DEFAULT_SEED}, as the pipeline")
    parser.add_argument("--batch-size", type=_batch_size, default="auto", help="an integer or auto (GPU probe)")
    parser.add_argument("--max-gen-tokens", type=int, default=DEFAULT_MAX_GEN_TOKENS, help="upper bound of max_gen_toks")
    parser.add_argument("--mcq-shots", type=int, default=DEFAULT_SHOTS,
                        help=f"examples per MCQ prompt (default {DEFAULT_SHOTS}, as the pipeline)")
    parser.add_argument("--gen-shots", type=int, default=DEFAULT_SHOTS,
                        help=f"examples per GEN prompt (default {DEFAULT_SHOTS}, as the pipeline)")
    parser.add_argument("--limit", type=int, default=None, help="score the first N items of each format")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:0 (default: cuda if available)")


def run(args: argparse.Namespace) -> int:
    result = evaluate_model(args.model, args.items, args.benchmark, seed=args.seed, batch_size=args.batch_size,
                            max_gen_tokens=args.max_gen_tokens, limit=args.limit, device=args.device,
                            task_dir=task_folder_of(args.output),
                            num_fewshot={"mcq": args.mcq_shots, "gen": args.gen_shots})
    write_result(result, args.output)
    for line in summary_lines(result):
        print(line)
    print(f"reproduce: {result['reproduce']}")
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
    task_dirs = dict(zip(benchmarks, smk.output.tasks))
    extra = {"family": smk.wildcards.family, "mode": mode, "step": step}
    if mode != "base":
        extra["export_parity"] = str(smk.input.parity)
    shots = ev.get("num_fewshot") or {}
    results = evaluate_checkpoint(model_dir, items_paths, seed=int(ev.get("seed", DEFAULT_SEED)),
                                  batch_size=ev.get("batch_size", "auto"),
                                  max_gen_tokens=int(ev.get("max_gen_tokens", DEFAULT_MAX_GEN_TOKENS)),
                                  num_fewshot={f: int(shots.get(f, DEFAULT_SHOTS)) for f in ("mcq", "gen")},
                                  task_dirs=task_dirs, limit=ev.get("limit"),
                                  gpus=int(getattr(smk.resources, "gpu", 0) or 0), extra_provenance=extra)
    for benchmark, result in results.items():
        write_result(result, outputs[benchmark])
        for line in summary_lines(result):
            print(line)
