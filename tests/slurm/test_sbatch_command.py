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


def test_train_carries_its_signal_before_the_time_limit(sbatch_lines):
    """No site profile needed for the save on SIGTERM and the requeue after it (issue 19.7): train's
    own resources hold slurm_extra --signal=TERM@<training.preemption_grace_s + 300> (600 s in the
    config) --requeue."""
    assert {"--signal=TERM@900", "--requeue"} <= set(sbatch_lines["train"].split()), sbatch_lines["train"]
    assert not [rule for rule, call in sbatch_lines.items() if rule != "train" and "--signal" in call]


def test_import_nemo_asks_for_no_gpu(repo_root, tmp_path):
    """NeMo's importer converts on CPU (issue 19.5): no idle GPU (the plugin's own set_gres_string,
    which submit() appends to the sbatch line); the parity gate after it has one."""
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    jobs = {job.rule.name: job for job in dry_run_jobs("models_llama", repo_root / "config" / "config.yaml",
                                                        full=True, workdir=tmp_path)}
    assert set_gres_string(jobs["import_nemo"]) == ""
    assert set_gres_string(jobs["import_parity"]).split() == ["--gpus=1"]


def test_partitions_come_from_the_config(repo_root, tmp_path):
    """Config `slurm:` gives every job its partition through the rule's resources, read by the
    plugin's own get_partition_arg (no site profile needed); unset, no -p: the cluster's default."""
    import yaml
    from types import SimpleNamespace

    from snakemake_executor_plugin_slurm import Executor

    config = yaml.safe_load((repo_root / "config" / "config.yaml").read_text())
    # a stand-in executor with no partition table: get_partition_arg then only reads the job
    plugin = SimpleNamespace(_partitions=None, _fallback_partition="", logger=None)
    for partitions, expect in (({"cpu_partition": "cpu-q", "gpu_partition": "gpu-q"}, (" -p cpu-q", " -p gpu-q")),
                               ({"cpu_partition": None, "gpu_partition": None}, ("", ""))):
        config["slurm"] = partitions
        configfile = tmp_path / "config.yaml"
        configfile.write_text(yaml.safe_dump(config))
        jobs = {job.rule.name: job for job in dry_run_jobs("all_llama", configfile, full=True, workdir=tmp_path)
                if not job.rule.norun}
        for rule in ("download_model", "import_nemo", "tokenize"):
            assert Executor.get_partition_arg(plugin, jobs[rule]) == expect[0], rule
        for rule in ("import_parity", "train", "export", "evaluate"):
            assert Executor.get_partition_arg(plugin, jobs[rule]) == expect[1], rule
