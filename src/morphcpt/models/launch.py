"""Starting the training worker: one plain process on CPU, torchrun on GPUs (docs/design.md §6).

`launch_worker` runs the worker in its own session, forwards SIGTERM/SIGINT to it, gives it
`training.preemption_grace_s` to save, and kills whatever is left of its process group.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from morphcpt.errors import MorphcptError
from morphcpt.fileio import write_json_atomic


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker_command(spec_path: Path, gpus: int) -> list[str]:
    if gpus > 0:
        # torchrun, run by this interpreter (a `torchrun` on PATH may belong to another Python).
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={gpus}",
                "-m", "morphcpt.models.train_worker", str(spec_path)]
    return [sys.executable, "-m", "morphcpt.models.train_worker", str(spec_path)]


def _kill_group(pgid: int, sig) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def launch_worker(spec: dict[str, Any], env_extra: dict[str, str] | None = None, *,
                  resume_note: Callable[[dict[str, Any]], str] | None = None) -> int:
    """Run the worker (torchrun on GPUs, one plain process on CPU); return its exit code.

    The worker gets its own process group, and whatever is left of it when it ends is killed:
    a crashed or preempted worker leaves Megatron's spawned checkpoint-writer processes behind,
    which would otherwise live on (and hold the job's stdout open).

    SIGTERM: the worker starts with SIGTERM ignored (torchrun is told not to handle it, so it
    neither dies nor kills the ranks), until its SaveOnSigterm callback takes it over. A SIGTERM
    to the driver (Slurm signals every process of the step; a local Ctrl-C or kill reaches only
    the driver) is passed on; the driver then waits up to `preemption_grace_s` for the save."""
    spec_path = Path(spec["train_dir"]) / "train_spec.json"
    write_json_atomic(spec_path, spec, sort_keys=True)
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "") if env.get("PYTHONPATH") else src
    env["OMP_NUM_THREADS"] = str(max(1, spec.get("threads", 1) // max(1, spec["gpus"])))
    env["TORCHELASTIC_SIGNALS_TO_HANDLE"] = "SIGINT,SIGHUP,SIGQUIT"  # not SIGTERM: see above
    if spec["gpus"] == 0:
        env.setdefault("MASTER_ADDR", "127.0.0.1")
        env["MASTER_PORT"] = str(_free_port())
    env.update(env_extra or {})
    cmd = worker_command(spec_path, spec["gpus"])
    print("train: launching " + " ".join(cmd), flush=True)
    grace = float(spec["training"]["preemption_grace_s"])
    # The child inherits the ignored SIGTERM; the driver's own handler is installed right after.
    previous_term = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        # cwd = the train folder: Lightning writes lightning_logs/ into the working directory.
        proc = subprocess.Popen(cmd, env=env, cwd=spec["train_dir"], start_new_session=True)
    finally:
        signal.signal(signal.SIGTERM, previous_term)
    received: list[tuple[int, float]] = []  # (signal, when)

    def forward(signum, _frame):
        if not received:
            print(f"train: received signal {signum}: letting the worker save a checkpoint "
                  f"(up to {grace:.0f} s)", flush=True)
            _kill_group(proc.pid, signal.SIGTERM)
        received.append((signum, time.monotonic()))

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while True:
            try:
                rc = proc.wait(timeout=1.0)
                break
            except subprocess.TimeoutExpired:
                pass
            if received and time.monotonic() - received[0][1] > grace:
                print(f"train: the worker did not stop within {grace:.0f} s; killing it", flush=True)
                _kill_group(proc.pid, signal.SIGKILL)
        if received:
            raise MorphcptError(f"training interrupted by signal {received[0][0]} (preemption or time limit); "
                                f"{resume_note(spec) if resume_note else 'rerun to resume'}")
        return rc
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _kill_group(proc.pid, signal.SIGKILL)
