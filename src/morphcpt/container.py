"""The NeMo image, started by the NeMo rules themselves (docs/design.md §11).

The NeMo rules (import_nemo, import_parity, train, export) run their Snakemake script on the
host, in the environment Snakemake was started from. When the config names an image
(`nemo_container`), the NeMo work runs in it as `apptainer exec --nv --bind <folders> IMAGE python
...`; without one (the CPU demo, the tests) it runs directly in this process or its children. So
Snakemake's own container deployment is not used, and a dry run or `morphcpt plan` needs no
apptainer: it is looked up only when a job starts, where a node without it stops with the fix
before any work.

- `setting(image, results_dir)`: the image and the host folders it gets (or None: run directly);
  finds apptainer/singularity, so call it first thing in a job.
- `wrap(argv, setting)`: an argv that runs `argv` in the image (unchanged without one). Under Slurm
  with several nodes it wraps what runs on each node: `srun ... apptainer exec ... torchrun ...`;
  the image has no srun.
- `call(setting, rule, gpus, "module:function", **kwargs)`: a package function run in the image
  (`python -m morphcpt.container`, which first checks the GPUs it asked for), or called directly.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import socket
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any

from morphcpt.errors import MorphcptError

RUNTIMES = ("apptainer", "singularity")
# The rules whose work runs in the image of `nemo_container` when one is configured.
NEMO_RULES = ("import_nemo", "import_parity", "train", "export")
# The repository root: its src/ is put on PYTHONPATH in the image, so `morphcpt` imports there.
REPO_ROOT = Path(__file__).resolve().parents[2]
SRC = REPO_ROOT / "src"
# Lines the process in the image prints for `call` to read back: the function's result and the
# one-line error it ended with (both as JSON).
RESULT_MARK = "morphcpt-in-image-result: "
ERROR_MARK = "morphcpt-in-image-error: "


def runs_in_image(rule: str, config: dict[str, Any]) -> bool:
    """Whether `rule`'s work runs in the NeMo image (then the image checks its own GPUs)."""
    return rule in NEMO_RULES and bool(config.get("nemo_container"))


def runtime(image: str, env: dict[str, str] | None = None) -> str:
    """The apptainer (or singularity) command on PATH; a MorphcptError naming the fix otherwise."""
    path = (env if env is not None else os.environ).get("PATH")
    for name in RUNTIMES:
        found = shutil.which(name, path=path)
        if found:
            return found
    raise MorphcptError(
        f"neither apptainer nor singularity is on PATH on node {socket.gethostname()}, and the NeMo rules run in "
        f"the image {image} (config nemo_container). Nothing was done. Make apptainer available to the jobs "
        "(e.g. `module load apptainer` before starting Snakemake, or run on nodes that have it), or set "
        "nemo_container: null to run the NeMo rules in this environment (CPU stack, no TransformerEngine)")


def bind_folders(results_dir: str | Path, workdir: str | Path | None = None) -> list[str]:
    """The host folders the image gets: the working directory, the repository (its src/) and the
    results folder with links resolved (results/ may be a link to scratch). Nested ones are
    left out: a bind of a parent shows them."""
    workdir = Path(workdir or Path.cwd())
    folders = [workdir.resolve(), REPO_ROOT, Path(workdir, results_dir).resolve()]
    kept: list[Path] = []
    for folder in sorted(set(folders), key=lambda p: len(p.parts)):
        if not any(folder == k or k in folder.parents for k in kept):
            kept.append(folder)
    return [str(k) for k in kept]


def setting(image: str | None, results_dir: str | Path, workdir: str | Path | None = None,
            env: dict[str, str] | None = None) -> dict[str, Any] | None:
    """How the NeMo work of this job runs: None (directly, no image configured) or the image, the
    runtime command (a MorphcptError here when there is none) and the folders to bind."""
    if not image:
        return None
    return {"image": str(image), "runtime": runtime(str(image), env),
            "binds": bind_folders(results_dir, workdir)}


def wrap(argv: list[str], container: dict[str, Any] | None) -> list[str]:
    """`argv` run in the image: `apptainer exec --nv --bind A,B IMAGE argv` (this interpreter
    becomes the image's `python`); `argv` itself without an image. --nv gives the image the node's
    GPUs and driver; the environment (PYTHONPATH, CUDA_VISIBLE_DEVICES, torchrun's PET_*) passes
    through, as apptainer keeps the host's variables."""
    argv = [str(a) for a in argv]
    if not container:
        return argv
    if argv and argv[0] == sys.executable:
        argv = ["python", *argv[1:]]
    return [container["runtime"], "exec", "--nv", "--bind", ",".join(container["binds"]), container["image"], *argv]


def with_src_on_path(env: dict[str, str]) -> dict[str, str]:
    """`env` with the repository's src/ first on PYTHONPATH (the image has no morphcpt installed)."""
    env = dict(env)
    old = env.get("PYTHONPATH")
    env["PYTHONPATH"] = str(SRC) + (os.pathsep + old if old else "")
    return env


def _encode(value: Any) -> Any:
    if isinstance(value, Path):
        return {"__path__": str(value)}
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"__path__"}:
            return Path(value["__path__"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def _function(target: str):
    module, name = target.split(":", 1)
    return getattr(importlib.import_module(module), name)


def call_argv(rule: str, gpus: int, target: str, kwargs: dict[str, Any]) -> list[str]:
    """The command that runs `target(**kwargs)` in a fresh interpreter (`python -m morphcpt.container`)."""
    payload = json.dumps({"rule": rule, "gpus": int(gpus), "target": target, "kwargs": _encode(kwargs)})
    return [sys.executable, "-m", "morphcpt.container", payload]


def call(container: dict[str, Any] | None, rule: str, gpus: int, target: str, **kwargs: Any) -> Any:
    """`target(**kwargs)` ("package.module:function") and its result: called here without an image;
    otherwise in the image, in a process that first checks the GPUs the job asked for (the result
    comes back as JSON: plain values and Paths). Its output goes to this process's stdout (the log);
    its one-line MorphcptError becomes this process's."""
    if not container:
        return _function(target)(**kwargs)
    cmd = wrap(call_argv(rule, gpus, target, kwargs), container)
    print(f"{rule}: in the image: {' '.join(cmd[:6])} ... {target}", flush=True)
    proc = subprocess.Popen(cmd, env=with_src_on_path(dict(os.environ)), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1)
    error, result = None, None
    assert proc.stdout is not None
    for line in proc.stdout:
        for mark in (RESULT_MARK, ERROR_MARK):
            if mark in line:  # after any unfinished line of the function's output
                line, found = line.split(mark, 1)
                if mark == RESULT_MARK:
                    result = _decode(json.loads(found))
                else:
                    error = json.loads(found)
                break
        if line:
            sys.stdout.write(line)
            sys.stdout.flush()
    rc = proc.wait()
    if rc != 0:
        raise MorphcptError(error or f"{target} failed in the image {container['image']} (exit code {rc}); "
                                     "see the lines above in this log")
    return result


def main(payload: str) -> int:
    """In the image: check the GPUs the job asked for, then run the function; one line on failure."""
    from morphcpt.cuda_devices import check_cuda_devices

    job = json.loads(payload)
    try:
        check_cuda_devices(job["rule"], int(job["gpus"]))
        result = _function(job["target"])(**_decode(job["kwargs"]))
        sys.stdout.flush()
        print(RESULT_MARK + json.dumps(_encode(result)), flush=True)
    except MorphcptError as exc:
        print(ERROR_MARK + json.dumps(str(exc)), flush=True)
        return 1
    except Exception:  # noqa: BLE001 - the traceback goes to the log, the job fails
        traceback.print_exc()
        sys.stderr.flush()
        return 1
    return 0


# Under the guard: checkpoint writers spawn processes that re-import the main module.
if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
