"""Starting the training worker: one plain process on CPU, torchrun on GPUs (docs/design.md §6).

`launch_worker` runs the worker in its own session, forwards SIGTERM/SIGINT to it, gives it
`training.preemption_grace_s` to save, and kills whatever is left of its process group.

More than one node (`spec["nodes"]` > 1, inside the train job's Slurm allocation): the driver runs
`srun --ntasks=N --ntasks-per-node=1 ...` (`srun_command`), which starts one torchrun agent per
node (`worker_command`: c10d rendezvous on this host, the allocation's first node, id = the Slurm
job id). Signals then come from Slurm, not from the driver: see `launch_worker`.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from morphcpt import container
from morphcpt.errors import MorphcptError
from morphcpt.fileio import write_json_atomic


# The worker module torchrun (or plain Python) runs; tests swap in their own through monkeypatch.
WORKER_MODULE = "morphcpt.models.train_worker"
# Seconds the driver waits past the grace before it kills what is left: torchrun itself waits the
# grace (TORCH_ELASTIC_SHUTDOWN_TIMEOUT) after the first rank exits, then needs a moment to reap.
KILL_SLACK_S = 10.0
# Written by rank 0 into the train folder once its save on SIGTERM is complete (SaveOnSigterm): on
# several nodes the driver is not the one Slurm signals, and torchrun's agents exit 1 after a
# signal, so this file is how it learns that the workers stopped for one (docs/design.md §6).
PREEMPTED_MARKER = "stopped_on_signal.json"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ranks_per_node(spec: dict[str, Any]) -> int:
    """Worker processes per node: one per GPU; on CPU `cpu_ranks` (default 1, gloo)."""
    return int(spec["gpus"]) if spec["gpus"] else int(spec.get("cpu_ranks", 1))


def worker_command(spec_path: Path, ranks: int, *, torchrun: bool | None = None, nodes: int = 1,
                   rendezvous: dict[str, str] | None = None) -> list[str]:
    """What runs on each node: torchrun for more than one rank (or on GPUs), else one plain
    process. One node: `torchrun --standalone`. Several: one agent per node (`--nnodes`), c10d
    rendezvous at `rendezvous["endpoint"]` ("host:port") under `rendezvous["id"]`."""
    if torchrun is None:
        torchrun = ranks > 1 or nodes > 1
    if not torchrun:
        return [sys.executable, "-m", WORKER_MODULE, str(spec_path)]
    # torchrun, run by this interpreter (a `torchrun` on PATH may belong to another Python).
    run = [sys.executable, "-m", "torch.distributed.run"]
    if nodes == 1:
        layout = ["--standalone", f"--nproc-per-node={ranks}"]
    else:
        if not rendezvous:
            raise ValueError("worker_command: several nodes need a rendezvous (endpoint, id)")
        layout = [f"--nnodes={nodes}", f"--nproc-per-node={ranks}", "--rdzv-backend=c10d",
                  f"--rdzv-endpoint={rendezvous['endpoint']}", f"--rdzv-id={rendezvous['id']}"]
    return run + layout + ["-m", WORKER_MODULE, str(spec_path)]


def srun_command(nodes: int, *, cpus_per_task: int, gpus_per_node: int, grace_s: float) -> list[str]:
    """The srun that starts one task (a torchrun agent) per node of the job's allocation.

    --kill-on-bad-exit=0: an agent exits 1 after a SIGTERM while another may still be saving;
    --wait: once the first task ends, the others get the grace (+ slack) to end before srun kills
    them (a site's WaitTime does not apply). The job asked for --gres=gpu:G per node, so does the
    step. Nothing else from the batch environment is relied on: the Slurm executor removes the
    allocation's SLURM_* variables but the job id before it runs the job."""
    cmd = ["srun", f"--ntasks={nodes}", "--ntasks-per-node=1", "--kill-on-bad-exit=0",
           f"--wait={int(grace_s + KILL_SLACK_S)}", f"--cpus-per-task={max(1, cpus_per_task)}"]
    if gpus_per_node:
        cmd.append(f"--gres=gpu:{gpus_per_node}")
    return cmd


def rendezvous_here(env: dict[str, str] | None = None) -> dict[str, str]:
    """The c10d rendezvous of a multi-node run: this host (the driver runs in the batch step, on
    the allocation's first node), a free port, and the Slurm job id as run id."""
    env = os.environ if env is None else env
    job_id = env.get("SLURM_JOB_ID")
    if not job_id:
        raise MorphcptError("parallelism.nodes > 1 runs only inside a Slurm allocation (SLURM_JOB_ID is not set): "
                            "run the workflow with the Slurm profile, or set nodes: 1")
    return {"endpoint": f"{socket.gethostname()}:{_free_port()}", "id": job_id}


def _kill_group(pgid: int, sig) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _proc_table() -> dict[int, tuple[int, int, str]]:
    """pid -> (parent pid, process group, start time) of every process, from /proc."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) "
        table[int(entry.name)] = (int(fields[1]), int(fields[2]), fields[19])
    return table


def descendants(pid: int) -> dict[int, str]:
    """Every process below `pid` (children, their children, ...): pid -> start time.

    torchrun starts each rank in a session of its own, and Megatron's checkpoint writers are the
    ranks' children: neither is in the process group of the process the driver started."""
    table = _proc_table()
    children: dict[int, list[int]] = {}
    for child, (parent, _pgid, _start) in table.items():
        children.setdefault(parent, []).append(child)
    found, todo = {}, list(children.get(pid, []))
    while todo:
        child = todo.pop()
        if child not in found:
            found[child] = table[child][2]
            todo.extend(children.get(child, []))
    return found


def _signal_tracked(tracked: dict[int, str], sig) -> None:
    """Send `sig` to each tracked process that is still the same process (same start time)."""
    table = _proc_table()
    for pid, start in tracked.items():
        if pid in table and table[pid][2] == start:
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass


def launch_worker(spec: dict[str, Any], env_extra: dict[str, str] | None = None, *,
                  resume_note: Callable[[dict[str, Any]], str] | None = None) -> int:
    """Run the worker (torchrun for several ranks or on GPUs, one plain process for a single CPU
    rank); return its exit code.

    Every process below the driver is tracked while it runs and killed when the worker ends: a
    crashed or preempted worker leaves Megatron's spawned checkpoint-writer processes behind, and
    torchrun's ranks live in sessions of their own, so a process-group kill would miss both.

    SIGTERM (docs/design.md §6): a SIGTERM to the driver (a local kill or Ctrl-C reaches only the
    driver; Slurm signals every process of the step) is passed on to every process below it, so
    each rank's SaveOnSigterm callback runs its save. torchrun handles SIGTERM itself: it forwards
    it to the ranks and SIGKILLs them after its shutdown timeout, set here to
    `training.preemption_grace_s` (torch's default is 30 s). That is also the only torchrun path
    with this timeout: when torchrun does not handle SIGTERM, the first rank to exit makes it stop
    the others after a fixed 30 s (LocalElasticAgent._stop_workers). The driver waits the grace
    (+ KILL_SLACK_S), then kills what is left. Until a rank's callback is installed, SIGTERM ends
    it (nothing to save yet); a plain single process starts with SIGTERM ignored instead.

    Several nodes: the driver runs in the job's batch step and starts `srun`. Slurm's warning
    (`--signal=TERM@...`) and `scancel --signal=TERM` signal every process of the job's steps but
    not the batch step: the agents and ranks get SIGTERM from their own slurmstepd, torchrun waits
    the grace, and srun (which turns a SIGTERM it receives into a SIGKILL of every task: "forcing
    job termination") is not signalled, neither by Slurm nor by the driver. The driver learns of
    the stop from PREEMPTED_MARKER, written by rank 0 once its checkpoint is saved."""
    spec_path = Path(spec["train_dir"]) / "train_spec.json"
    write_json_atomic(spec_path, spec, sort_keys=True)
    grace = float(spec["training"]["preemption_grace_s"])
    ranks = ranks_per_node(spec)
    nodes = int(spec.get("nodes", 1))
    marker = Path(spec["train_dir"]) / PREEMPTED_MARKER
    marker.unlink(missing_ok=True)
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "") if env.get("PYTHONPATH") else src
    env["OMP_NUM_THREADS"] = str(max(1, spec.get("threads", 1) // ranks))
    # torchrun's options read PET_<OPTION> (torch.distributed.argparse_util); TORCH_ELASTIC_SHUTDOWN_TIMEOUT
    # is the same setting under its documented name. See the docstring for why SIGTERM is handled.
    env["PET_SIGNALS_TO_HANDLE"] = "SIGTERM,SIGINT,SIGHUP,SIGQUIT"
    env["PET_SHUTDOWN_TIMEOUT"] = env["TORCH_ELASTIC_SHUTDOWN_TIMEOUT"] = str(int(grace))
    if spec["gpus"] == 0 and ranks == 1 and nodes == 1:
        env.setdefault("MASTER_ADDR", "127.0.0.1")
        env["MASTER_PORT"] = str(_free_port())
    env.update(env_extra or {})
    # In the NeMo image when one is configured (morphcpt.container, docs/design.md §11): the image
    # wraps what runs on each node; an srun prefix goes outside the wrap (the image has no srun).
    rendezvous = rendezvous_here() if nodes > 1 else None
    cmd = container.wrap(worker_command(spec_path, ranks, torchrun=bool(spec["gpus"]) or ranks > 1 or nodes > 1,
                                        nodes=nodes, rendezvous=rendezvous),
                         spec.get("container"))
    if nodes > 1:  # srun outside the image's wrap: the image has no srun
        cmd = srun_command(nodes, cpus_per_task=int(spec.get("threads", 1)), gpus_per_node=int(spec["gpus"]),
                           grace_s=grace) + cmd
    print("train: launching " + " ".join(cmd), flush=True)
    # The child inherits the ignored SIGTERM; the driver's own handler is installed right after.
    previous_term = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        # cwd = the train folder: Lightning writes lightning_logs/ into the working directory.
        proc = subprocess.Popen(cmd, env=env, cwd=spec["train_dir"], start_new_session=True)
    finally:
        signal.signal(signal.SIGTERM, previous_term)
    tracked: dict[int, str] = {}
    received: list[tuple[int, float]] = []  # (signal, when)

    def forward(signum, _frame):
        if not received:
            print(f"train: received signal {signum}: letting the worker save a checkpoint "
                  f"(up to {grace:.0f} s)", flush=True)
            tracked.update(descendants(os.getpid()))
            if nodes == 1:  # several nodes: srun would SIGKILL its tasks; Slurm signals them itself
                _signal_tracked(tracked, signal.SIGTERM)
        received.append((signum, time.monotonic()))

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        while True:
            tracked.update(descendants(os.getpid()))
            try:
                rc = proc.wait(timeout=1.0)
                break
            except subprocess.TimeoutExpired:
                pass
            if received and time.monotonic() - received[0][1] > grace + KILL_SLACK_S:
                print(f"train: the worker did not stop within {grace:.0f} s; killing it", flush=True)
                _signal_tracked(tracked, signal.SIGKILL)
        if received:
            print(f"train: the worker stopped {time.monotonic() - received[0][1]:.1f} s after the signal", flush=True)
            raise MorphcptError(f"training interrupted by signal {received[0][0]} (preemption or time limit); "
                                f"{resume_note(spec) if resume_note else 'rerun to resume'}")
        if nodes > 1 and rc != 0 and marker.is_file():
            stop = json.loads(marker.read_text())
            print(f"train: the workers stopped on signal {stop['signal']} after saving step {stop['step']}", flush=True)
            raise MorphcptError(f"training interrupted by signal {stop['signal']} (preemption or time limit); "
                                f"{resume_note(spec) if resume_note else 'rerun to resume'}")
        return rc
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _signal_tracked(tracked, signal.SIGKILL)
        _kill_group(proc.pid, signal.SIGKILL)
