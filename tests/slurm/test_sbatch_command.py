"""The sbatch command of every job of the real config, built by the Slurm executor plugin's own
`get_submit_command` from the jobs of the workflow's DAG (`morphcpt.plan.dry_run_jobs`): each job
asks for exactly one node (issue 19.1), GPU jobs for one task, not one per GPU. No cluster needed."""

from __future__ import annotations

import pytest

from morphcpt.plan import dry_run_jobs

# What the plugin's submit() passes in; placeholders, as account/partition are site choices.
PARAMS = dict(run_uuid="UUID", slurm_logfile="LOG", comment_str="COMMENT", account="-A ACCOUNT",
              partition="-p PARTITION", workdir="WORKDIR")


@pytest.fixture(scope="module")
def sbatch_lines(repo_root, tmp_path_factory) -> dict[str, str]:
    """rule -> the sbatch line of its first job (target rules, never submitted, left out)."""
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command

    jobs = dry_run_jobs("all", repo_root / "config" / "config.yaml", full=True, workdir=tmp_path_factory.mktemp("w"))
    lines: dict[str, str] = {}
    for job in jobs:
        if not job.rule.norun:
            lines.setdefault(job.rule.name, get_submit_command(job, PARAMS))
    return lines


def test_every_job_asks_for_exactly_one_node(sbatch_lines):
    assert {"download_model", "tokenize", "import_nemo", "train", "export", "evaluate"} <= set(sbatch_lines)
    for rule, call in sbatch_lines.items():
        assert call.split().count("--nodes=1") == 1, (rule, call)
        assert not [a for a in call.split() if a.startswith("--nodes=") and a != "--nodes=1"], (rule, call)


def test_gpu_jobs_get_one_task_not_one_per_gpu(sbatch_lines):
    for rule in ("import_parity", "train", "export", "evaluate"):
        assert "--ntasks-per-gpu" not in sbatch_lines[rule], (rule, sbatch_lines[rule])
