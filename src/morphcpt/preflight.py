"""Checks that stop a run before any job starts, instead of after jobs were submitted.

- The Snakemake profile in use still holds a `CHANGE_ME` placeholder (account, partition): a real
  run would submit, fail with "invalid partition" and be resubmitted by `retries`.
- A download from the Hugging Face Hub is pending (a family or the corpus with `source: hf`
  whose download output is missing) and no token is set: the download would fail only after the
  other jobs (a 7 GB corpus download, chunking) ran for a while.
- NeMo jobs that ask for GPUs would run outside the configured NeMo image (`nemo_container` set,
  apptainer not among the deployment methods): each would wait in the GPU queue only to stop at
  its stack check (models/nemo_stack.py).
- The results folder lies outside the working directory (or is a link out of it) while the NeMo
  rules run in the image: Snakemake gives the image only the working directory, so each NeMo job
  would wait for GPUs and then not find its inputs. A `--bind` in the apptainer args fixes it.

The Snakefile (rules/preflight.smk) runs `preflight_problems` twice: at parse time, printing each
problem as a warning (a dry run shows them), and in `onstart`, just before the first job of a
real run, where any problem stops the run with one line. Plain mappings in, messages out, so
this module is tested without Snakemake.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any, Iterable, Mapping

from morphcpt.hub import TOKEN_VARS, token_source
from morphcpt.rule_resources import gpu_resources

PLACEHOLDER = "CHANGE_ME"
# The rules that run NeMo (in the image of `nemo_container` on GPU nodes; rules/common.smk).
NEMO_RULES = ("import_nemo", "import_parity", "train", "export")


def unedited_profile_values(default_resources: Mapping[str, Any] | None,
                            set_resources: Mapping[str, Mapping[str, Any]] | None) -> list[str]:
    """Every resource of the profile (or command line) that still holds CHANGE_ME, one entry per
    key and value: "default-resources slurm_account=CHANGE_ME_account",
    "set-resources slurm_partition=CHANGE_ME_gpu_partition (import_nemo, train)"."""
    found = [f"default-resources {name}={value}" for name, value in (default_resources or {}).items()
             if PLACEHOLDER in str(value)]
    rules_by_setting: dict[tuple[str, str], list[str]] = {}
    for rule, values in (set_resources or {}).items():
        for name, value in (values or {}).items():
            if PLACEHOLDER in str(value):
                rules_by_setting.setdefault((name, str(value)), []).append(rule)
    found += [f"set-resources {name}={value} ({', '.join(rules)})" for (name, value), rules in rules_by_setting.items()]
    return found


def pending_hub_downloads(config: dict[str, Any], layout: Any,
                          download_jobs: Iterable[tuple[str, str | None]] | None = None) -> list[str]:
    """Config keys (families.<f>, corpus) of Hub downloads that are still to run.

    `download_jobs`: (rule, family or None) of the download jobs the run will execute, when the
    DAG is known; otherwise a `source: hf` entry counts when its download output is missing."""
    hf_families = {name for name, fam in config["families"].items() if fam.get("source") == "hf"}
    corpus_hf = config["corpus"].get("source") == "hf"
    if download_jobs is not None:
        jobs = set(download_jobs)
        pending = [f"families.{f}" for f in sorted(hf_families) if ("download_model", f) in jobs]
        if corpus_hf and any(rule == "download_corpus" for rule, _ in jobs):
            pending.append("corpus")
        return pending
    pending = [f"families.{f}" for f in sorted(hf_families) if not Path(layout.hf_manifest(f)).exists()]
    if corpus_hf and not Path(layout.corpus_manifest()).exists():
        pending.append("corpus")
    return pending


def configured_nemo_gpu_rules(config: dict[str, Any]) -> list[str]:
    """The NeMo rules the config gives GPUs (train: any family with `parallelism.gpus` > 0)."""
    gpus = {rule: gpu_resources(config, rule)["gpu"] for rule in NEMO_RULES}
    gpus["train"] = max((fam.get("parallelism", {}).get("gpus", 0) for fam in config["families"].values()), default=0)
    return [rule for rule in NEMO_RULES if gpus[rule]]


def nemo_gpu_jobs_outside_image(nemo_container: str | None, apptainer_on: bool, gpu_rules: Iterable[str]) -> str | None:
    """The problem line when NeMo jobs on GPUs would not run in the configured image, else None."""
    rules = sorted(set(gpu_rules), key=NEMO_RULES.index)
    if not nemo_container or apptainer_on or not rules:
        return None
    return (f"the NeMo jobs on GPUs ({', '.join(rules)}) would run outside the NeMo image {nemo_container} "
            "(apptainer is not among the deployment methods) and stop at their stack check: run with the Slurm "
            "profile (it sets `software-deployment-method: apptainer` and `apptainer-args: \"--nv\"`) or add "
            "`--software-deployment-method apptainer --apptainer-args=--nv`; to run them in this "
            "environment on purpose, set nemo_container: null")


def apptainer_binds(apptainer_args: str) -> list[Path]:
    """The host folders that `--bind`/`-B` options in the apptainer args make visible."""
    words, folders = shlex.split(apptainer_args or ""), []
    for i, word in enumerate(words):
        if word in ("--bind", "-B") and i + 1 < len(words):
            spec = words[i + 1]
        elif word.startswith("--bind="):
            spec = word.split("=", 1)[1]
        else:
            continue
        folders += [Path(entry.split(":", 1)[0]) for entry in spec.split(",") if entry]
    return folders


def results_outside_image(results_dir: str | Path, workdir: str | Path, apptainer_args: str) -> str | None:
    """The problem line when the NeMo image would not see the results folder, else None."""
    results = Path(workdir, results_dir).resolve()
    visible = [Path(workdir).resolve()] + [folder.resolve() for folder in apptainer_binds(apptainer_args)]
    if any(results == folder or folder in results.parents for folder in visible):
        return None
    return (f"results_dir {results} is outside the working directory {Path(workdir).resolve()}, the only folder "
            "Snakemake gives the NeMo image, so the NeMo jobs would not find their inputs: add "
            f"`--bind {results}` to apptainer-args in the profile (e.g. apptainer-args: \"--nv --bind {results}\")")


def preflight_problems(config: dict[str, Any], layout: Any, default_resources=None, set_resources=None,
                       download_jobs=None, env: Mapping[str, str] | None = None, apptainer_on: bool = False,
                       apptainer_args: str = "", run_dir: str | Path = ".",
                       nemo_gpu_rules: Iterable[str] | None = None) -> list[str]:
    """One line per problem that would make the run fail after it started; [] when none.

    `nemo_gpu_rules`: the NeMo rules of the jobs to run that ask for GPUs, when the DAG is known;
    otherwise those the config gives GPUs. `run_dir`: Snakemake's working directory."""
    problems = []
    gpu_rules = configured_nemo_gpu_rules(config) if nemo_gpu_rules is None else list(nemo_gpu_rules)
    outside = nemo_gpu_jobs_outside_image(config.get("nemo_container"), apptainer_on, gpu_rules)
    if outside:
        problems.append(outside)
    elif config.get("nemo_container") and apptainer_on and gpu_rules:
        hidden = results_outside_image(config["results_dir"], run_dir, apptainer_args)
        if hidden:
            problems.append(hidden)
    unedited = unedited_profile_values(default_resources, set_resources)
    if unedited:
        problems.append(
            f"the Snakemake profile still has {PLACEHOLDER} values: {'; '.join(unedited)}. Replace them with your "
            "site's account and partitions in the profile you run with (profiles/slurm/config.yaml, or your copy "
            "under ~/.config/snakemake/), then rerun")
    pending = pending_hub_downloads(config, layout, download_jobs)
    if pending and token_source(env) is None:
        repos = ", ".join(f"{key} ({_hf_id(config, key)})" for key in pending)
        problems.append(
            f"no Hugging Face token for the pending download of {repos}: export HF_TOKEN=<a read token of an account "
            f"that accepted the model licences> ({' or '.join(TOKEN_VARS)} are read; never printed) or run "
            "`huggingface-cli login`, then rerun")
    return problems


def _hf_id(config: dict[str, Any], key: str) -> str:
    node = config["corpus"] if key == "corpus" else config["families"][key.split(".", 1)[1]]
    return str(node.get("hf_id"))
