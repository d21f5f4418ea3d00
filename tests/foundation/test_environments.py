"""Where each rule runs (docs/design.md §11): with the shipped config the NeMo rules run in the
pinned NeMo image and in no conda env (with both deployment methods on, Snakemake would build the
CPU env inside the image), every other rule in its conda env when conda is on; the CPU demo runs the
NeMo rules in envs/nemo.yaml. The shipped Slurm profile runs the image and gives it the GPUs."""

from __future__ import annotations

from pathlib import Path

import yaml

from morphcpt.plan import dry_run_jobs
from morphcpt.preflight import NEMO_RULES

REPO_ROOT = Path(__file__).resolve().parents[2]


def _environments(configfile: Path, target: str) -> dict[str, tuple[str | None, str | None]]:
    """rule -> (conda env file name, container image) over every job of the target."""
    found = {}
    for job in dry_run_jobs(target, configfile, full=True):
        if job.rule.norun:  # target rules run nothing
            continue
        conda = job.rule.conda_env
        found[job.rule.name] = (Path(str(conda)).name if conda else None, job.rule.container_img or None)
    return found


def test_shipped_config_runs_the_nemo_rules_in_the_pinned_image():
    config = yaml.safe_load((REPO_ROOT / "config" / "config.yaml").read_text())
    image = config["nemo_container"]
    assert image == "docker://nvcr.io/nvidia/nemo:26.02"
    envs = _environments(REPO_ROOT / "config" / "config.yaml", "all_llama")
    assert set(NEMO_RULES) <= envs.keys() and "evaluate" in envs and "tokenize" in envs
    # preflight's list of NeMo rules is exactly the rules that run in the image
    assert {rule for rule, (_, container) in envs.items() if container} == set(NEMO_RULES)
    for rule, (conda, container) in envs.items():
        if rule in NEMO_RULES:
            assert (conda, container) == (None, image), rule
        else:
            assert container is None and conda in {"cpu.yaml", "eval.yaml"}, (rule, conda)
    assert envs["evaluate"][0] == "eval.yaml"


def test_demo_runs_the_nemo_rules_in_the_cpu_env():
    envs = _environments(REPO_ROOT / "config" / "demo.yaml", "demo")
    for rule in NEMO_RULES:
        assert envs[rule] == ("nemo.yaml", None), rule


def test_slurm_profile_runs_rules_in_their_environments_with_gpus():
    profile = yaml.safe_load((REPO_ROOT / "profiles" / "slurm" / "config.yaml").read_text())
    assert profile["software-deployment-method"] == ["apptainer"]
    assert "--nv" in profile["apptainer-args"].split()
