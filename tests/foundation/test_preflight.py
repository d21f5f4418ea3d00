"""Preflight: an unedited profile or a missing Hugging Face token stop a real run before its first
job with one line (a dry run warns), whether the profile is given as a path or by name. Nothing
here needs apptainer (the NeMo jobs start the image themselves: tests/foundation/test_container.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from morphcpt.layout import Layout
from morphcpt.preflight import pending_hub_downloads, preflight_problems, unedited_profile_values

SECRET = "hf_SECRETvalue0123456789"


@pytest.fixture
def hf_config(repo_root, tmp_path):
    """The demo config plus one Hub family (its download output missing), results under tmp_path."""
    config = yaml.safe_load((repo_root / "config" / "demo.yaml").read_text())
    config["results_dir"] = str(tmp_path / "results")
    config["corpus"]["local_path"] = str(repo_root / config["corpus"]["local_path"])
    config["families"]["small_gemma"] = {
        "arch": "gemma", "source": "hf", "hf_id": "google/gemma-2-2b", "revision": "0" * 40,
        "nemo_model": "Gemma2Model", "nemo_config": "Gemma2Config2B", "tokenizer": "gemma2", "params": 2.61e9,
        "parallelism": {"gpus": 0}}
    for name in ("pacute", "hierarchical", "cute"):
        bench = config["evaluation"]["benchmarks"][name]
        bench["local_path"] = str(repo_root / bench["local_path"])
    return config


def _profile(repo_root, name):
    return yaml.safe_load((repo_root / "profiles" / name / "config.yaml").read_text())


def test_the_shipped_slurm_profile_is_caught_and_the_local_one_is_not(repo_root):
    slurm = _profile(repo_root, "slurm")
    found = unedited_profile_values(slurm["default-resources"], slurm.get("set-resources"))
    assert found == ["default-resources slurm_account=CHANGE_ME_account"]  # partitions: config `slurm:`
    edited = {k: v.replace("CHANGE_ME_", "site_") for k, v in slurm["default-resources"].items()}
    assert unedited_profile_values(edited, {"train": {"slurm_partition": "gpu"}}) == []
    assert unedited_profile_values({}, {"train": {"slurm_partition": "CHANGE_ME_gpu"}, "export": {"x": "CHANGE_ME_gpu"}}) \
        == ["set-resources slurm_partition=CHANGE_ME_gpu (train)", "set-resources x=CHANGE_ME_gpu (export)"]
    local = _profile(repo_root, "local")
    assert unedited_profile_values(local.get("default-resources"), local.get("set-resources")) == []


def test_token_is_needed_only_for_pending_hub_downloads(hf_config, tmp_path):
    layout = Layout(hf_config)
    no_token = {"HF_TOKEN_PATH": str(tmp_path / "no-login")}
    assert pending_hub_downloads(hf_config, layout) == ["families.small_gemma"]
    (problem,) = preflight_problems(hf_config, layout, env=no_token)
    assert "no Hugging Face token for the pending download of families.small_gemma (google/gemma-2-2b)" in problem
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        assert preflight_problems(hf_config, layout, env={**no_token, var: SECRET}) == []
    login = tmp_path / "login-token"
    login.write_text(SECRET + "\n")  # `huggingface-cli login`
    assert preflight_problems(hf_config, layout, env={"HF_TOKEN_PATH": str(login)}) == []
    # the DAG decides when it is known: a target without the Hub family needs no token
    assert preflight_problems(hf_config, layout, download_jobs=[("download_model", "tiny_llama")], env=no_token) == []
    # once the download output exists, nothing is pending
    manifest = layout.hf_manifest("small_gemma")
    os.makedirs(os.path.dirname(manifest))
    open(manifest, "w").close()
    assert pending_hub_downloads(hf_config, layout) == []
    hf_config["corpus"].update(source="hf", hf_id="org/corpus", revision="a" * 40)
    assert pending_hub_downloads(hf_config, layout) == ["corpus"]


def _snakemake(repo_root, tmp_path, config, *args, env_extra=None):
    configfile = tmp_path / "run.yaml"
    configfile.write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")}
    env.update(HF_TOKEN_PATH=str(tmp_path / "no-login"), XDG_CONFIG_HOME=str(tmp_path / "xdg"), **(env_extra or {}))
    proc = subprocess.run([sys.executable, "-m", "snakemake", *args, "--configfile", str(configfile),
                           "--snakefile", str(repo_root / "Snakefile"), "--directory", str(tmp_path / "work")],
                          capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    return proc.returncode, proc.stdout + proc.stderr


def _assert_nothing_ran(tmp_path):
    assert not (tmp_path / "results").exists(), "a job ran although preflight failed"
    assert not list((tmp_path / "work" / ".snakemake").glob("slurm_logs/**/*.log"))


@pytest.mark.parametrize("how", ["path", "name"])
def test_unedited_profile_stops_a_real_run_before_its_first_job(repo_root, tmp_path, hf_config, how):
    del hf_config["families"]["small_gemma"]  # no token problem here: only the profile
    if how == "name":  # `--profile slurm` after copying the profile to ~/.config/snakemake/slurm
        shutil.copytree(repo_root / "profiles" / "slurm", tmp_path / "xdg" / "snakemake" / "slurm")
        profile = "slurm"
    else:
        profile = str(repo_root / "profiles" / "slurm")
    rc, out = _snakemake(repo_root, tmp_path, hf_config, "--profile", profile, "-n", "models")
    assert rc == 0 and "morphcpt preflight: warning: the Snakemake profile still has CHANGE_ME values" in out, out[-2000:]
    rc, out = _snakemake(repo_root, tmp_path, hf_config, "--profile", profile, "models")
    assert rc != 0
    lines = [ln for ln in out.splitlines() if ln.startswith("morphcpt preflight: the Snakemake profile")]
    assert len(lines) == 1 and "default-resources slurm_account=CHANGE_ME_account" in lines[0]
    _assert_nothing_ran(tmp_path)


def test_missing_token_stops_a_real_run_before_anything_starts(repo_root, tmp_path, hf_config):
    local = str(repo_root / "profiles" / "local")
    rc, out = _snakemake(repo_root, tmp_path, hf_config, "--profile", local, "-n", "all")
    assert rc == 0 and "morphcpt preflight: warning: no Hugging Face token" in out
    rc, out = _snakemake(repo_root, tmp_path, hf_config, "--profile", local, "all")
    assert rc != 0
    assert "morphcpt preflight: no Hugging Face token for the pending download of families.small_gemma" in out
    _assert_nothing_ran(tmp_path)  # not even the local corpus split or the synthetic model
    # either variable satisfies it, and its value is never printed
    rc, out = _snakemake(repo_root, tmp_path, hf_config, "--profile", local, "-n", "all",
                         env_extra={"HUGGING_FACE_HUB_TOKEN": SECRET})
    assert rc == 0 and "no Hugging Face token" not in out and SECRET not in out


