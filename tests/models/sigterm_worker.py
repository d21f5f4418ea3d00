"""A training worker stand-in for the launcher tests (tests/models/test_launch.py), run by real
torchrun with gloo: it takes steps (one all-reduce each), and on SIGTERM it does what
SaveOnSigterm does (finish the step, agree across ranks, save, exit PREEMPTED_EXIT_CODE), with a
save that takes `save_seconds[rank]` so the test can time the grace it is actually given.

Files in the train folder: pids.jsonl (rank, pid, session of every rank), progress-<rank> (last
step). The checkpoint: checkpoint_dir/step=<k>-unfinished/rank<r>.pt, renamed to step=<k> by
the last rank once every rank's file is there.

`python sigterm_worker.py --driver SPEC RESULT` is the driver instead: `launch_worker` with this
module as the worker, its outcome (exit code or error, end time) written to RESULT as JSON."""

import json
import os
import signal
import sys
import time
from pathlib import Path


def drive(spec_path: str, result_path: str) -> None:
    from morphcpt.errors import MorphcptError
    from morphcpt.models import launch

    launch.WORKER_MODULE = "sigterm_worker"
    try:
        out = {"rc": launch.launch_worker(json.loads(Path(spec_path).read_text())), "error": None}
    except MorphcptError as exc:
        out = {"rc": None, "error": str(exc)}
    out["ended"] = time.time()
    Path(result_path).write_text(json.dumps(out))


if __name__ == "__main__" and sys.argv[1] == "--driver":
    drive(sys.argv[2], sys.argv[3])
elif __name__ == "__main__":
    import torch
    import torch.distributed as dist

    from morphcpt.models.checkpoints import PREEMPTED_EXIT_CODE

    spec = json.loads(Path(sys.argv[1]).read_text())
    train_dir, ckpt_dir = Path(spec["train_dir"]), Path(spec["checkpoint_dir"])
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    with open(train_dir / "pids.jsonl", "a") as f:
        f.write(json.dumps({"rank": rank, "pid": os.getpid(), "sid": os.getsid(0)}) + "\n")
    interrupted = []
    signal.signal(signal.SIGTERM, lambda signum, _frame: interrupted.append(time.time()))
    for step in range(1, spec["training"]["max_steps"] + 1):
        time.sleep(0.1)
        x = torch.ones(1)
        dist.all_reduce(x)
        (train_dir / f"progress-{rank}").write_text(str(step))
        flag = torch.tensor([int(bool(interrupted))])
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        if flag.item():
            out = ckpt_dir / f"step={step}-unfinished"
            out.mkdir(parents=True, exist_ok=True)
            time.sleep(spec["save_seconds"][rank])
            torch.save({"step": step, "rank": rank, "value": x}, out / f"rank{rank}.pt")
            if rank == max(range(world), key=lambda r: spec["save_seconds"][r]):
                while not all((out / f"rank{r}.pt").is_file() for r in range(world)):
                    time.sleep(0.1)
                out.rename(ckpt_dir / f"step={step}")
            sys.exit(PREEMPTED_EXIT_CODE)
    sys.exit(0)
