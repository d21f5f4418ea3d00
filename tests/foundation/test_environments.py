"""Where each rule runs (docs/design.md §11): no rule uses Snakemake's container deployment (a dry
run needs no apptainer); with the shipped config the NeMo rules run their script in the
environment Snakemake runs in (envs/nemo.yaml with conda on) and start the pinned NeMo image themselves
(morphcpt.container, tests/foundation/test_container.py); every other rule in its conda env when
conda is on; the CPU demo runs the NeMo rules in envs/nemo.yaml."""

from __future__ import annotations

from pathlib import Path

import yaml

from morphcpt.container import NEMO_RULES
from morphcpt.plan import dry_run_jobs

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = REPO_ROOT / "workflow" / "scripts"


def _environments(configfile: Path, target: str) -> dict[str, tuple[str | None, str | None]]:
    """rule -> (conda env file name, container image) over every job of the target."""
    found = {}
    for job in dry_run_jobs(target, configfile, full=True):
        if job.rule.norun:  # target rules run nothing
            continue
        conda = job.rule.conda_env
        found[job.rule.name] = (Path(str(conda)).name if conda else None, job.rule.container_img or None)
    return found


def test_shipped_config_starts_the_pinned_image_from_the_nemo_rules():
    config = yaml.safe_load((REPO_ROOT / "config" / "config.yaml").read_text())
    assert config["nemo_container"] == "docker://nvcr.io/nvidia/nemo:26.02"
    envs = _environments(REPO_ROOT / "config" / "config.yaml", "all_llama")
    assert set(NEMO_RULES) <= envs.keys() and "evaluate" in envs and "tokenize" in envs
    assert not [rule for rule, (_, image) in envs.items() if image]  # Snakemake starts no container
    for rule, (conda, _) in envs.items():
        if rule in NEMO_RULES:
            assert conda == "nemo.yaml", rule  # the host side (driver, adapters) when conda is on
            # the rule's script takes the image from the config and runs its NeMo work there
            text = (SCRIPTS / f"{rule}.py").read_text()
            assert 'container.setting(smk.config["nemo_container"]' in text, rule
            assert "container.call(" in text or 'spec["container"] = image' in text, rule
        else:
            assert conda in {"cpu.yaml", "eval.yaml"}, (rule, conda)
    assert envs["evaluate"][0] == "eval.yaml"


def test_demo_runs_the_nemo_rules_in_the_cpu_env():
    envs = _environments(REPO_ROOT / "config" / "demo.yaml", "demo")
    for rule in NEMO_RULES:
        assert envs[rule] == ("nemo.yaml", None), rule


def test_slurm_profile_needs_no_container_deployment():
    profile = yaml.safe_load((REPO_ROOT / "profiles" / "slurm" / "config.yaml").read_text())
    assert "apptainer" not in profile.get("software-deployment-method", [])
    assert "apptainer-args" not in profile and "apptainer-prefix" not in profile
