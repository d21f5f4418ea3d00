"""`morphcpt plan TARGET`: what a target will run and cost, before any GPU hour is spent.

Jobs per rule come from a Snakemake API dry run of the real workflow (no subprocess, no scraping of
printed output); bytes per rule and GPU-hours come from `morphcpt.estimates` (docs/design.md §9).
Without --full only jobs that still need to run are counted; --full counts the whole DAG as if
nothing existed yet (the size of the experiment).
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from morphcpt.config import DEFAULT_CONFIG, REPO_ROOT, load_config
from morphcpt.errors import MorphcptError
from morphcpt.estimates import evaluate_wall_minutes, gpu_hours_per_train_job, output_bytes, train_wall_minutes
from morphcpt.memory_estimate import family_gpu_memory, over_memory_warning

TARGET_RULES = {"all", "demo"}
# Rules in the order data flows through them (docs/design.md §2), for a readable table.
RULE_ORDER = ("download_model", "import_nemo", "import_parity", "download_corpus", "split_chunks", "tokenize",
              "train", "export", "fetch_benchmark", "evaluate", "aggregate", "training_curves", "run_summary",
              "scores_page", "compare", "comparison_page")


def dry_run_jobs(target: str, configfile: str | Path, full: bool = False, workdir: str | Path | None = None) -> list[Any]:
    """The jobs Snakemake would run for `target` (every job of the DAG when `full`)."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, DAGSettings, OutputSettings, ResourceSettings

    snakefile = REPO_ROOT / "Snakefile"
    # Snakemake logs the DAG build to stderr; the plan is the output here.
    sink = io.StringIO()
    with contextlib.redirect_stderr(sink), contextlib.redirect_stdout(sink):
        with SnakemakeApi(OutputSettings()) as api:
            workflow_api = api.workflow(
                resource_settings=ResourceSettings(cores=1),
                config_settings=ConfigSettings(configfiles=[Path(configfile).resolve()]),
                snakefile=snakefile,
                workdir=Path(workdir) if workdir else REPO_ROOT,
            )
            dag_api = workflow_api.dag(DAGSettings(targets={target}, forceall=full))
            workflow = dag_api.workflow_api._workflow
            workflow._prepare_dag(forceall=full, ignore_incomplete=True, lock_warn_only=True)
            workflow._build_dag()
            jobs = list(workflow.dag.needrun_jobs(exclude_finished=False)) if not full else list(workflow.dag.jobs)
    return jobs


def make_plan(target: str, configfile: str | Path = DEFAULT_CONFIG, full: bool = False,
              workdir: str | Path | None = None) -> dict[str, Any]:
    config = load_config(configfile)
    try:
        jobs = dry_run_jobs(target, configfile, full=full, workdir=workdir)
    except MorphcptError:
        raise
    except Exception as exc:  # Snakemake's own errors: unknown target, missing input, ...
        raise MorphcptError(f"dry run of target {target!r} with {configfile} failed: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}") from None
    counts: Counter[str] = Counter()
    bytes_by_rule: Counter[str] = Counter()
    gpu_hours = 0.0
    trained_families: set[str] = set()
    for job in jobs:
        rule = job.rule.name
        if rule in TARGET_RULES or job.rule.norun:
            continue
        counts[rule] += 1
        bytes_by_rule[rule] += int(output_bytes(config, rule, dict(job.wildcards.items())))
        if rule == "train":
            gpu_hours += gpu_hours_per_train_job(config, job.wildcards.family)
            trained_families.add(job.wildcards.family)
    runtime = runtime_rows(config, jobs)
    order = [r for r in RULE_ORDER if r in counts] + sorted(set(counts) - set(RULE_ORDER))
    shown = Path(configfile).resolve()
    return {
        "target": target,
        "configfile": str(shown.relative_to(REPO_ROOT)) if shown.is_relative_to(REPO_ROOT) else str(configfile),
        "full": full,
        "jobs": {rule: counts[rule] for rule in order},
        "bytes": {rule: bytes_by_rule[rule] for rule in order},
        "total_bytes": int(sum(bytes_by_rule.values())),
        "gpu_hours": round(gpu_hours, 3),
        "gpu_memory": {f: family_gpu_memory(config, f) for f in sorted(trained_families)},
        "runtime": runtime,
    }


# A GPU job's requested runtime against its estimate: below 1.5x a slow node or a checkpoint save
# hits the time limit; above 10x the job waits longer in the queue, or never starts where the
# request exceeds the partition's MaxTime.
RUNTIME_MIN_RATIO, RUNTIME_MAX_RATIO = 1.5, 10.0
# GPU rules with a wall-time estimate, per family (train: 6·N·D; evaluate: 2·N·tokens x measured factor)
WALL_ESTIMATES = {"train": train_wall_minutes, "evaluate": evaluate_wall_minutes}


def runtime_rows(config: dict[str, Any], jobs: list[Any]) -> list[dict[str, Any]]:
    """One row per GPU rule (train, evaluate: per family): requested runtime (min) beside the estimate
    (min; None where the plan has no estimate: train from 6·N·D, evaluate from its token count)."""
    rows: dict[tuple[str, str | None], dict[str, Any]] = {}
    for job in jobs:
        rule = job.rule.name
        # a train job on several nodes asks for its GPUs per node (gres gpu:N), not with gpu (rule_resources)
        if job.rule.norun or not (job.resources.get("gpu", 0) or "gpu" in str(job.resources.get("gres") or "")):
            continue
        family = job.wildcards.get("family") if rule in WALL_ESTIMATES else None
        estimate = WALL_ESTIMATES[rule](config, family) if rule in WALL_ESTIMATES else None
        requested = job.resources.get("runtime")
        rows.setdefault((rule, family), {
            "rule": rule, "family": family, "requested_min": requested,
            "estimate_min": round(estimate, 1) if estimate is not None else None,
            "ratio": round(requested / estimate, 2) if estimate and requested else None})
    order = {r: i for i, r in enumerate(RULE_ORDER)}
    return sorted(rows.values(), key=lambda r: (order.get(r["rule"], len(order)), r["family"] or ""))


def runtime_warnings(rows: list[dict[str, Any]]) -> list[str]:
    warnings = []
    for row in rows:
        if row["ratio"] is None:
            continue
        name = row["rule"] + (f" ({row['family']})" if row["family"] else "")
        where = f"resources.{row['rule']}.runtime in the config"
        if row["ratio"] < RUNTIME_MIN_RATIO:
            warnings.append(f"{name} requests {row['requested_min']} min, {row['ratio']:g}x its estimate of "
                            f"{row['estimate_min']:g} min (below {RUNTIME_MIN_RATIO:g}x): it may hit the time limit; "
                            f"raise {where}")
        elif row["ratio"] > RUNTIME_MAX_RATIO:
            warnings.append(f"{name} requests {row['requested_min']} min, {row['ratio']:g}x its estimate of "
                            f"{row['estimate_min']:g} min (above {RUNTIME_MAX_RATIO:g}x): it waits longer in the "
                            f"queue, and never starts above the partition's MaxTime; lower {where}")
    return warnings


def _human(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1000.0
    return f"{n:.1f} PB"


def format_plan(plan: dict[str, Any]) -> str:
    scope = "whole DAG (--full)" if plan["full"] else "jobs that still need to run"
    lines = [f"plan for target {plan['target']} ({plan['configfile']}; {scope})", "",
             f"{'rule':<18}{'jobs':>6}{'output':>14}"]
    for rule, n in plan["jobs"].items():
        lines.append(f"{rule:<18}{n:>6}{_human(plan['bytes'][rule]):>14}")
    lines += ["", f"{'total':<18}{sum(plan['jobs'].values()):>6}{_human(plan['total_bytes']):>14}",
              f"GPU-hours (training, 6·N·D at the configured MFU): {plan['gpu_hours']:.1f}"]
    if not plan["jobs"]:
        lines.insert(2, "nothing to do: every output is up to date (use --full for the whole DAG)")
    if plan["gpu_memory"]:
        lines += ["", _format_gpu_memory(plan["gpu_memory"])]
    if plan.get("runtime"):
        lines += ["", "Requested runtime of the GPU jobs (min) beside the estimate:",
                  f"{'rule':<28}{'requested':>10}{'estimate':>10}{'ratio':>8}"]
        for row in plan["runtime"]:
            name = row["rule"] + (f" ({row['family']})" if row["family"] else "")
            est = f"{row['estimate_min']:g}" if row["estimate_min"] is not None else "-"
            ratio = f"{row['ratio']:g}x" if row["ratio"] is not None else "-"
            lines.append(f"{name:<28}{row['requested_min']:>10}{est:>10}{ratio:>8}")
    return "\n".join(lines)


def _format_gpu_memory(by_family: dict[str, dict[str, Any]]) -> str:
    """Per-GPU memory of each trained family (morphcpt.memory_estimate), one row per family."""
    parts = ("weights", "grads", "optimizer", "activations", "logits", "reserve")
    lines = ["GPU memory per GPU of the train jobs (estimate, GiB; morphcpt.memory_estimate):",
             f"{'family':<18}{'TP':>3}{'PP':>3}{'DP':>4}{'mbs':>4}" + "".join(f"{p:>12}" for p in parts)
             + f"{'total':>8}{'of':>6}"]
    for name, est in by_family.items():
        limit = f"{est['gpu_memory_gib']:g}" if est["gpus"] else "cpu"
        flag = "" if est["fits"] else "  OVER"
        lines.append(f"{name:<18}{est['tensor']:>3}{est['pipeline']:>3}{est['data_parallel']:>4}"
                     f"{est['micro_batch_size']:>4}" + "".join(f"{est['gib'][p]:>12.1f}" for p in parts)
                     + f"{est['total_gib']:>8.1f}{limit:>6}{flag}")
    return "\n".join(lines)


# -- CLI ----------------------------------------------------------------------------------------

def add_arguments(parser) -> None:
    parser.add_argument("target", help="a workflow target: all_llama, all_gemma, all, demo, shards_llama, ...")
    parser.add_argument("--configfile", default=str(DEFAULT_CONFIG), help="config file (default: config/config.yaml)")
    parser.add_argument("--full", action="store_true", help="count the whole DAG, not only jobs that need to run")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    parser.add_argument("--directory", default=None, help="working directory of the workflow (default: the repository)")


def unpinned_sources(config: dict[str, Any]) -> list[str]:
    """Inputs that are not pinned to a commit: results could change under a rerun."""
    import re

    found = []
    corpus = config["corpus"]
    if corpus["source"] == "hf" and not re.fullmatch(r"[0-9a-f]{40}", corpus["revision"]):
        found.append(f"corpus.revision is {corpus['revision']!r}, not a 40-hex commit")
    return found


def run(args) -> int:
    plan = make_plan(args.target, args.configfile, full=args.full, workdir=args.directory)
    for warning in unpinned_sources(load_config(args.configfile)):
        print(f"morphcpt plan: warning: {warning}", file=sys.stderr)
    for family, estimate in plan["gpu_memory"].items():
        warning = over_memory_warning(family, estimate)
        if warning:
            print(f"morphcpt plan: warning: {warning}", file=sys.stderr)
    for warning in runtime_warnings(plan["runtime"]):
        print(f"morphcpt plan: warning: {warning}", file=sys.stderr)
    keys = ("jobs", "bytes", "total_bytes", "gpu_hours", "gpu_memory", "runtime")
    print(json.dumps({k: plan[k] for k in keys}) if args.json else format_plan(plan))
    return 0
