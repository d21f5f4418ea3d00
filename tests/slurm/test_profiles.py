"""The shipped profiles: what a user copies to a cluster must carry only site choices (every need
of the workflow travels with its rules and config: tests/slurm/test_sbatch_command.py), never
`tasks` (it becomes --ntasks-per-gpu and runs a GPU job once per GPU), and explain every key."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
SLURM_PROFILE = REPO_ROOT / "profiles" / "slurm" / "config.yaml"
LOCAL_PROFILE = REPO_ROOT / "profiles" / "local" / "config.yaml"
# Rules that run on GPUs in the real experiment (docs/design.md §10): import_nemo converts on CPU.
GPU_RULES = {"import_parity", "train", "export", "evaluate"}


def keys_anywhere(node) -> list[str]:
    if isinstance(node, dict):
        return [k for k, v in node.items() for k in (k, *keys_anywhere(v))]
    if isinstance(node, list):
        return [k for item in node for k in keys_anywhere(item)]
    return []


def uncommented_top_level_keys(path: Path) -> list[str]:
    """Top-level keys with neither an inline comment nor a comment block above their group."""
    lines = path.read_text().splitlines()
    missing = []
    for i, line in enumerate(lines):
        if not line or line[0] in " #-":
            continue
        if "#" in line:
            continue
        j = i - 1
        while j >= 0 and lines[j].strip() and not lines[j].lstrip().startswith("#"):
            j -= 1
        if j < 0 or not lines[j].strip():
            missing.append(line.split(":")[0])
    return missing


@pytest.fixture(scope="module")
def slurm_profile() -> dict:
    return yaml.safe_load(SLURM_PROFILE.read_text())


@pytest.fixture(scope="module")
def local_profile() -> dict:
    return yaml.safe_load(LOCAL_PROFILE.read_text())


def test_slurm_profile_never_sets_tasks(slurm_profile):
    keys = keys_anywhere(slurm_profile)
    assert "tasks" not in keys and "tasks_per_gpu" not in keys and "tasks_per_node" not in keys


def test_slurm_profile_carries_only_site_choices(slurm_profile):
    assert slurm_profile["executor"] == "slurm" and slurm_profile["jobs"] > 0
    assert set(slurm_profile["default-resources"]) == {"slurm_account"}
    # gpu/cpus/mem/runtime, the partitions (config `slurm:`), train's --signal (slurm_extra) and the
    # container belong to the rules and the config, not to the site profile.
    assert not {"gpu", "mem_mb", "runtime", "cpus_per_task", "slurm_partition", "slurm_extra",
                "set-resources", "software-deployment-method", "apptainer-args"} & set(keys_anywhere(slurm_profile))


def test_gpu_rules_are_the_ones_the_config_gives_gpus(repo_root):
    config = yaml.safe_load((repo_root / "config" / "config.yaml").read_text())
    with_gpu = {rule for rule, res in config["resources"].items() if res.get("gpu")}
    # train takes its GPU count from the family's parallelism, not from `resources:`.
    assert with_gpu | {"train"} == GPU_RULES


def test_local_profile(local_profile):
    assert local_profile["executor"] == "local"
    assert local_profile["resources"] == ["gpu=0"]
    assert local_profile["keep-going"] is False
    assert local_profile["rerun-incomplete"] is True
    assert "tasks" not in keys_anywhere(local_profile)


@pytest.mark.parametrize("path", [SLURM_PROFILE, LOCAL_PROFILE], ids=["slurm", "local"])
def test_every_profile_key_is_commented(path):
    assert uncommented_top_level_keys(path) == []


def test_snakemake_accepts_both_profiles(repo_root):
    """Dry runs through each profile: unknown keys or bad values would stop Snakemake here.
    --forceall lists every job of the target whatever results already exist."""
    for profile, extra in (("profiles/slurm", []), ("profiles/local", ["--configfile", "config/demo.yaml"])):
        proc = subprocess.run(
            [sys.executable, "-m", "snakemake", "--profile", profile, "-n", "--forceall", "models_llama", *extra],
            cwd=repo_root, capture_output=True, text=True, timeout=120,
            env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "import_nemo" in proc.stdout + proc.stderr


def test_slurm_profile_works_copied_to_user_config(repo_root, tmp_path):
    """README: copy profiles/slurm to ~/.config/snakemake/slurm, then `--profile slurm` finds it."""
    import shutil

    config_home = tmp_path / "xdg"
    shutil.copytree(repo_root / "profiles" / "slurm", config_home / "snakemake" / "slurm")
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", "--profile", "slurm", "-n", "--forceall", "models_llama"],
        cwd=repo_root, capture_output=True, text=True, timeout=120,
        env={**os.environ, "XDG_CONFIG_HOME": str(config_home),
             "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    # The copied profile's placeholders reached the jobs: it was the one in use.
    assert "slurm_account=CHANGE_ME_account" in proc.stdout + proc.stderr
