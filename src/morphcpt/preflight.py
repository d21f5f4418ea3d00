"""Checks that stop a run before any job starts, instead of after jobs were submitted.

- The Snakemake profile in use still holds a `CHANGE_ME` placeholder (account, partition): a real
  run would submit, fail with "invalid partition" and be resubmitted by `retries`.
- A download from the Hugging Face Hub is pending (a family or the corpus with `source: hf`
  whose download output is missing) and no token is set: the download would fail only after the
  other jobs (a 7 GB corpus download, chunking) ran for a while.

Nothing here needs apptainer: the NeMo rules start the NeMo image themselves (morphcpt.container),
and look for apptainer only when a job starts, so a dry run works on a login node without it.

The Snakefile (rules/preflight.smk) runs `preflight_problems` twice: at parse time, printing each
problem as a warning (a dry run shows them), and in `onstart`, just before the first job of a
real run, where any problem stops the run with one line. Plain mappings in, messages out, so
this module is tested without Snakemake.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Mapping

from morphcpt.hub import TOKEN_VARS, token_source

PLACEHOLDER = "CHANGE_ME"


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


def preflight_problems(config: dict[str, Any], layout: Any, default_resources=None, set_resources=None,
                       download_jobs=None, env: Mapping[str, str] | None = None) -> list[str]:
    """One line per problem that would make the run fail after it started; [] when none."""
    problems = []
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
