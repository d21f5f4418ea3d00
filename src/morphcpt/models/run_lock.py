"""One trainer per run folder: the training driver holds `train.lock` and the worker (global rank 0)
holds `train.worker.lock` while they run, each naming its host and PID in the file.

The locks are `flock`s, which the kernel drops when the holder dies (kill -9 included; on NFS when
the dead client's lease ends), so a lock left by a dead process is taken over by the next trainer,
which logs whose it was. A live holder stops the second trainer at once, before it touches the
folder, with the holder's host and PID. A driver also refuses a folder whose worker lock is held:
a worker orphaned by a killed driver (Snakemake killed with kill -9, then `--unlock` and a rerun)
still trains there.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import Iterator

from morphcpt.errors import MorphcptError

DRIVER_LOCK = "train.lock"
WORKER_LOCK = "train.worker.lock"
_WHO = {DRIVER_LOCK: "training driver", WORKER_LOCK: "training worker"}


def _holder(fd: int) -> str:
    """'host H, PID P, since ...' from a lock file's content ('' when empty or unreadable)."""
    os.lseek(fd, 0, os.SEEK_SET)
    raw = os.read(fd, 4096).decode(errors="replace").strip()
    try:
        rec = json.loads(raw)
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(rec["since"]))
        return f"host {rec['host']}, PID {rec['pid']}, since {since}"
    except (ValueError, KeyError, TypeError):
        return raw


def _refusal(path: Path, holder: str) -> MorphcptError:
    return MorphcptError(
        f"{path}: another {_WHO.get(path.name, 'trainer')} is running in {path.parent} ({holder or 'holder unknown'}); "
        "one trainer per run folder. Wait for it, or stop it (on that host: kill <PID>; it saves a checkpoint "
        "on SIGTERM) and run again")


@contextlib.contextmanager
def hold(path: Path) -> Iterator[None]:
    """Hold the lock file `path` (host and PID written in it) for the block, or stop at once naming
    its live holder. A lock whose holder died is taken over (logged). Cleared on a clean exit."""
    path = Path(path)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _refusal(path, _holder(fd)) from None
        previous = _holder(fd)
        if previous:
            print(f"train: took over {path}, left by a {_WHO.get(path.name, 'trainer')} that is no longer running "
                  f"({previous})", flush=True)
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, (json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "since": time.time()}) + "\n").encode())
        os.fsync(fd)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # a clean exit leaves no holder behind (the file stays: see flock)
    finally:
        os.close(fd)  # releases the flock


def refuse_if_held(path: Path) -> None:
    """Stop, naming the holder, if someone holds the lock file `path` (e.g. an orphaned worker)."""
    if not Path(path).exists():
        return
    fd = os.open(path, os.O_RDWR)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _refusal(Path(path), _holder(fd)) from None
    finally:
        os.close(fd)


@contextlib.contextmanager
def driver_lock(train_dir: Path) -> Iterator[None]:
    """The driver's hold on a run folder: its own lock, and no worker of an earlier driver alive."""
    with hold(Path(train_dir) / DRIVER_LOCK):
        refuse_if_held(Path(train_dir) / WORKER_LOCK)
        yield


def worker_lock(train_dir: Path) -> contextlib.AbstractContextManager:
    """The worker's hold (global rank 0 only; other ranks get a no-op)."""
    if int(os.environ.get("RANK", "0")) != 0:
        return contextlib.nullcontext()
    return hold(Path(train_dir) / WORKER_LOCK)
