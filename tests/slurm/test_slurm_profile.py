"""The workflow on a real (local, one-node) Slurm cluster under a minimal site profile (issue 19.7).

The profile, generated in tmp, is what a site's own `slurm` profile may be: `executor: slurm`,
`jobs`, the account, plus what this cluster without accounting needs (squeue status checks,
short waits). Everything else comes from the workflow's rules and config: resources, the
partitions (config `slurm:`), nodes=1. A real target of the workflow runs on a tiny synthetic
config; the test then reads back from slurmctld what each job asked for: GPU rules must have gone
through sbatch with --gpus=N (no --ntasks-per-gpu) to the GPU partition, CPU rules (import_nemo
among them: NeMo's importer converts on CPU) to the CPU partition, and produced their outputs.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from morphcpt.cuda_devices import FAKE_GPUS_ENV
from morphcpt.layout import Layout

REPO_ROOT = Path(__file__).resolve().parents[2]
TEST_ACCOUNT = "morphcpt-test"
CPU_PARTITION, GPU_PARTITION = "cpu", "gpu"  # made by scripts/slurm_local/start.sh
TARGET = "models_llama"
# rule -> GPUs it asks for in the test config (None: a CPU rule; 0: a GPU rule given none, as
# import_nemo in config/config.yaml). 2, not the default 1, so a value that does not come from the
# rule's config cannot pass.
EXPECTED_GPUS = {"download_model": None, "import_nemo": 0, "import_parity": 2}
# A hang guard, not the expected time: about 3 min on 2 idle cores (three jobs, two loading
# NeMo, plus the executor's status polling, which backs off by 10 s per check while a job
# runs); 6 min on 2 cores shared with other test runs. On INT Snakemake cancels its jobs and
# the failure report shows how far it got.
SNAKEMAKE_TIMEOUT_S = 540


def write_site_profile(folder: Path) -> Path:
    """A minimal site profile: executor, jobs, account; the rest is what this test cluster needs."""
    site = {
        "executor": "slurm",
        "jobs": 3,
        "default-resources": {"slurm_account": TEST_ACCOUNT},
        # No slurmdbd on the test cluster: sacct cannot answer, squeue can (MinJobAge=600).
        "slurm-status-command": "squeue",
        "slurm-init-seconds-before-status-checks": 2,
        "latency-wait": 5,
        "retries": 0,
        "keep-going": False,
        "slurm-keep-successful-logs": True,
    }
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(site, sort_keys=False))
    return folder


def absolute_local_paths(node):
    if isinstance(node, dict):
        return {k: str(REPO_ROOT / v) if k == "local_path" else absolute_local_paths(v) for k, v in node.items()}
    if isinstance(node, list):
        return [absolute_local_paths(v) for v in node]
    return node


def write_test_config(tmp_path: Path) -> dict:
    """The demo config (synthetic tiny Llama) with its results in tmp and GPU-tagged import rules."""
    config = absolute_local_paths(yaml.safe_load((REPO_ROOT / "config" / "demo.yaml").read_text()))
    config["results_dir"] = str(tmp_path / "results")
    config["slurm"] = {"cpu_partition": CPU_PARTITION, "gpu_partition": GPU_PARTITION}
    small = {"cpus_per_task": 1, "mem_mb": 3000, "runtime": 20}
    config["resources"] = {"default": dict(small)}
    for rule, gpus in EXPECTED_GPUS.items():
        config["resources"][rule] = dict(small) if gpus is None else {"gpu": gpus, **small}
    for rule in ("export", "evaluate"):
        config["resources"][rule] = {"gpu": 1, **small}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return config


def run_snakemake(cluster, workdir: Path, site_profile: Path, configfile: Path) -> subprocess.CompletedProcess:
    # The cluster's GPUs are GRES entries only: the jobs' CUDA check (morphcpt.cuda_devices) logs, not stops.
    env = {**cluster.env, "PATH": f"{Path(sys.executable).parent}:{cluster.env['PATH']}", FAKE_GPUS_ENV: "1"}
    # SIGINT, not SIGTERM: on INT Snakemake cancels its Slurm jobs and exits.
    command = ["timeout", "-s", "INT", "-k", "30", str(SNAKEMAKE_TIMEOUT_S),
               sys.executable, "-m", "snakemake", "--profile", str(site_profile),
               "--directory", str(workdir), "--verbose", TARGET, "--configfile", str(configfile)]
    return subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=SNAKEMAKE_TIMEOUT_S + 60)


def failure_report(proc: subprocess.CompletedProcess, workdir: Path, config: dict) -> str:
    parts = [f"snakemake exited {proc.returncode}", proc.stdout[-4000:], proc.stderr[-8000:]]
    for log in sorted((workdir / ".snakemake" / "slurm_logs").rglob("*.log")):
        parts.append(f"--- {log}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-30:]))
    for log in sorted((Path(config["results_dir"])).rglob("*.log")):
        parts.append(f"--- {log}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-30:]))
    return "\n".join(parts)


def jobs_by_rule(cluster, workdir: Path) -> dict[str, list[dict[str, str]]]:
    """This run's jobs (by working directory) grouped by rule (the executor's --comment)."""
    grouped: dict[str, list[dict[str, str]]] = {}
    for job in cluster.jobs():
        if job.get("WorkDir") != str(workdir):
            continue
        comment = job.get("Comment", "")
        rule = next((r for r in EXPECTED_GPUS if comment == f"rule_{r}" or comment.startswith(f"rule_{r}_wildcards")),
                    comment)
        grouped.setdefault(rule, []).append(job)
    return grouped


@pytest.mark.slurm
def test_local_cluster_hands_out_fake_gpus(slurm_cluster):
    """Harness self-check: the GPU partition grants GRES GPUs, so failures below are the workflow's."""
    out = slurm_cluster.run("srun", "-p", GPU_PARTITION, "--gpus=2", "-t", "1", "printenv", "CUDA_VISIBLE_DEVICES")
    assert out.strip() == "0,1"
    assert "gpu:8" in slurm_cluster.run("sinfo", "-h", "-o", "%G")


@pytest.mark.slurm
@pytest.mark.slow
def test_gpu_rules_go_through_sbatch_with_gpus(slurm_cluster, tmp_path):
    workdir = tmp_path / "work"
    workdir.mkdir()
    config = write_test_config(tmp_path)
    site_profile = write_site_profile(tmp_path / "site-profile")

    proc = run_snakemake(slurm_cluster, workdir, site_profile, tmp_path / "config.yaml")
    assert proc.returncode == 0, failure_report(proc, workdir, config)

    # Outputs of every stage of the target.
    layout = Layout(config)
    families = layout.families_of_arch("llama")
    assert families
    for family in families:
        assert Path(layout.hf_manifest(family)).is_file()
        nemo_dir = Path(layout.nemo_dir(family))
        assert nemo_dir.is_dir() and any(nemo_dir.iterdir())
        assert Path(layout.import_parity(family)).is_file()

    # What slurmctld recorded for each job: partition, account, GPUs (TresPerJob), success.
    jobs = jobs_by_rule(slurm_cluster, workdir)
    for rule, rule_jobs in jobs.items():  # shown by `pytest -rP` and on failure: where time went
        for job in rule_jobs:
            print(f"{rule}: job {job['JobId']} submitted {job.get('SubmitTime')} "
                  f"ran {job.get('StartTime')} .. {job.get('EndTime')} ({job.get('RunTime')})")
    assert set(jobs) == set(EXPECTED_GPUS), f"jobs by rule: { {r: len(j) for r, j in jobs.items()} }"
    for rule, gpus in EXPECTED_GPUS.items():
        assert len(jobs[rule]) == len(families), rule
        for job in jobs[rule]:
            assert job["JobState"] == "COMPLETED", (rule, job)
            assert job["Account"] == TEST_ACCOUNT, (rule, job)
            assert job["NumNodes"] == "1", (rule, job)  # rule_resources: nodes=1 -> sbatch --nodes=1
            if not gpus:
                assert job["Partition"] == CPU_PARTITION, (rule, job)
                assert "gpu" not in job.get("TresPerJob", ""), (rule, job)
            else:
                assert job["Partition"] == GPU_PARTITION, (rule, job)
                assert job.get("TresPerJob") == f"gres:gpu:{gpus}", (rule, job)
                assert job["NumTasks"] == "1", (rule, job)  # tasks_per_gpu=0: one task, not one per GPU

    # The sbatch command lines themselves (logged by the executor under --verbose).
    log = proc.stdout + proc.stderr
    calls = [line for line in log.splitlines() if "sbatch call:" in line]
    for rule, gpus in EXPECTED_GPUS.items():
        rule_calls = [c for c in calls if f"--comment rule_{rule}_wildcards" in c or f"--comment rule_{rule} " in c]
        assert len(rule_calls) == len(families), (rule, calls)
        for call in rule_calls:
            assert "--ntasks-per-gpu" not in call, call
            assert "--nodes=1" in call.split("--wrap=")[0], call
            if not gpus:
                assert "--gpus" not in call, call
            else:
                assert f"--gpus={gpus}" in call.split("--wrap=")[0], call
