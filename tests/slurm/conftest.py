"""The local Slurm test cluster (scripts/slurm_local) as a session fixture.

Started once per session when a `slurm` test runs, stopped afterwards (by pidfile, see
stop.sh). A cluster already running from the same folder is reused and left running. Skips
only where the cluster cannot exist: not root, or Slurm missing and no apt-get to install it.
With MORPHCPT_REQUIRE_SLURM=1 (set by .ci/run) those skips become failures, so CI cannot pass
without having run the Slurm test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = REPO_ROOT / "scripts" / "slurm_local"
SLURM_COMMANDS = ("slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "munged")


@dataclass(frozen=True)
class SlurmCluster:
    state_dir: Path
    env: dict[str, str]  # os.environ plus SLURM_CONF

    def run(self, *args: str, timeout: int = 30) -> str:
        proc = subprocess.run(args, env=self.env, capture_output=True, text=True, timeout=timeout)
        assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
        return proc.stdout

    def jobs(self) -> list[dict[str, str]]:
        """Every job slurmctld still knows (finished ones stay MinJobAge=600 s), as key=value dicts."""
        out = self.run("scontrol", "show", "job", "--oneliner")
        return [parse_scontrol_line(line) for line in out.splitlines() if line.startswith("JobId=")]


def parse_scontrol_line(line: str) -> dict[str, str]:
    fields = {}
    for token in line.split():
        if "=" in token:
            key, value = token.split("=", 1)
            fields[key] = value
    return fields


def cannot_run(reason: str):
    if os.environ.get("MORPHCPT_REQUIRE_SLURM") == "1":
        pytest.fail(f"MORPHCPT_REQUIRE_SLURM=1 but the Slurm test cannot run: {reason}")
    pytest.skip(reason)


def _script(name: str, env: dict[str, str], timeout: int) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPTS / name)], env=env, capture_output=True, text=True,
                          timeout=timeout)


def _alive(pidfile: Path) -> bool:
    try:
        os.kill(int(pidfile.read_text().strip()), 0)
    except (OSError, ValueError):
        return False
    return True


@pytest.fixture(scope="session")
def slurm_cluster() -> SlurmCluster:
    if os.geteuid() != 0:
        cannot_run("the local Slurm test cluster needs root (its daemons run as root); run as root "
                   "or see scripts/slurm_local/start.sh")
    env = dict(os.environ)
    if not all(shutil.which(c) for c in SLURM_COMMANDS):
        if not shutil.which("apt-get"):
            cannot_run("Slurm is not installed and there is no apt-get to install it "
                       "(needs Debian's slurmctld slurmd slurm-client munge)")
        setup = _script("setup.sh", env, timeout=600)
        assert setup.returncode == 0, f"scripts/slurm_local/setup.sh failed:\n{setup.stdout}\n{setup.stderr}"
    state_dir = Path(env.get("MORPHCPT_SLURM_DIR", REPO_ROOT / ".cache" / "slurm-local")).resolve()
    env["MORPHCPT_SLURM_DIR"] = str(state_dir)
    env["SLURM_CONF"] = str(state_dir / "etc" / "slurm.conf")
    already_running = _alive(state_dir / "run" / "slurmctld.pid") and _alive(state_dir / "run" / "slurmd.pid")
    start = _script("start.sh", env, timeout=120)
    # A cluster that does not come up is an error, never a skip.
    assert start.returncode == 0, f"scripts/slurm_local/start.sh failed:\n{start.stdout}\n{start.stderr}"
    try:
        yield SlurmCluster(state_dir=state_dir, env=env)
    finally:
        if not already_running:
            stop = _script("stop.sh", env, timeout=60)
            assert stop.returncode == 0, f"scripts/slurm_local/stop.sh failed:\n{stop.stdout}\n{stop.stderr}"
