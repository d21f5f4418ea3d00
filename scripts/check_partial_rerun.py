#!/usr/bin/env python
"""The partial rerun after a Patok edit, checked on a finished demo (issue 18 item 1; README
"Partial reruns and preemption", docs/design.md §5-§6).

    python scripts/check_partial_rerun.py RESULTS_DIR [--configfile config/demo.yaml] [--target demo]

RESULTS_DIR is the demo's `results_dir` as the demo got it (config/demo.yaml's results-demo, or the
value of `--config results_dir=...`). On the results of that finished demo: records every output's
mtime and sha256, makes a harmless but real edit to a Patok-only source file that the workflow
tracks (a comment appended to the first file `morphcpt.shards.SOURCE_MODES` gives to Patok alone,
so Patok's shards get a new `code_version` and a new fingerprint), runs the demo target once more,
with no manual step, and checks:

- the run succeeded, and the jobs that ran (read from Snakemake's log) are Patok's tokenize, train,
  export and evaluate (each at least once) and report jobs, nothing else;
- every output of another mode (vanilla, StochasTok, the base model's evaluation) and every shared
  upstream output (download, corpus, NeMo import) is untouched: same mtime and same sha256;
- Patok's new metrics.json records the new shard fingerprints (the sidecars' sha256, as in
  train/run_identity.json), which differ from the old ones, and its training started over from
  step 0 (the stale run was removed by the train job itself).

The edited file is restored (content and mtime) in every case, so the checkout and the DAG are as
before. Exit status 0 when everything holds, 1 with one line per mismatch otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
EDITED_MODE = "patok"
OTHER_MODES = ("vanilla", "stochastok", "base")
# Jobs of the edited mode that must rerun, and the report jobs that may (they read every mode).
MODE_RULES = ("tokenize", "train", "export", "evaluate")
REPORT_RULES = ("aggregate", "compare", "scores_page", "comparison_page", "training_curves", "run_summary")
TARGET_RULES = ("demo", "all")  # target rules without outputs


# -- the pieces, unit-tested (tests/foundation/test_check_partial_rerun.py) -----------------------

def snapshot(root: Path) -> dict[str, tuple[int, str]]:
    """Every file under `root`: relative path -> (mtime_ns, sha256)."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink():
            h = hashlib.sha256()
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
            out[path.relative_to(root).as_posix()] = (path.stat().st_mtime_ns, h.hexdigest())
    return out


def _names(rel: str) -> list[str]:
    """The folder names of a relative path and its file name without suffixes (logs are named
    .../<mode>.log)."""
    parts = rel.split("/")
    return [*parts[:-1], parts[-1].split(".")[0]]


def belongs_to(rel: str, mode: str) -> bool:
    return mode in _names(rel)


def may_change(rel: str, mode: str = EDITED_MODE) -> bool:
    """Outputs the rerun may rewrite: the edited mode's (a path part names it), the reports and
    their logs. Everything else (other modes, downloads, corpus, import, benchmarks) must not."""
    names = _names(rel)
    if mode in names or "report" in names:
        return True
    return names[0] == "logs" and len(names) > 1 and names[1] in REPORT_RULES


_JOB_HEAD = re.compile(r"^(?:local)?rule (\w+):\s*$")
_WILDCARDS = re.compile(r"^\s+wildcards: (.*)$")


def parse_jobs(log_text: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, wildcards) of every job Snakemake started, from its log ("rule X:" or "localrule X:"
    blocks with an optional "wildcards: a=1, b=2" line)."""
    jobs: list[tuple[str, dict[str, str]]] = []
    for line in log_text.splitlines():
        head = _JOB_HEAD.match(line)
        if head:
            jobs.append((head.group(1), {}))
            continue
        wc = _WILDCARDS.match(line)
        if wc and jobs and not jobs[-1][1]:
            jobs[-1][1].update(kv.split("=", 1) for kv in wc.group(1).split(", ") if "=" in kv)
    return jobs


def job_problems(jobs: list[tuple[str, dict[str, str]]], mode: str = EDITED_MODE) -> list[str]:
    """What is wrong with the job list of the rerun: a job of another rule or mode, or a job of
    the edited mode or the reports that did not run."""
    problems = []
    ran = set()
    for rule, wildcards in jobs:
        job_mode = wildcards.get("mode", wildcards.get("eval_mode"))
        if rule in MODE_RULES and job_mode == mode:
            ran.add(rule)
        elif rule in REPORT_RULES:
            ran.add(rule)
        elif rule not in TARGET_RULES:
            problems.append(f"job {rule} ({', '.join(f'{k}={v}' for k, v in wildcards.items()) or 'no wildcards'}) "
                            f"ran, but only {mode}'s {'/'.join(MODE_RULES)} and the report jobs should")
    for rule in MODE_RULES:
        if rule not in ran:
            problems.append(f"no {rule} job of {mode} ran")
    if not ran & set(REPORT_RULES):
        problems.append("no report job ran")
    return problems


def file_problems(before: dict[str, tuple[int, str]], after: dict[str, tuple[int, str]],
                  mode: str = EDITED_MODE) -> list[str]:
    """Outputs that must be untouched but were changed, removed or added; and a vacuous check
    (no output of another mode at all) counts as a problem too."""
    problems = []
    kept = {rel for rel in before if not may_change(rel, mode)}
    for rel in sorted(kept):
        if rel not in after:
            problems.append(f"{rel}: removed")
        elif after[rel][0] != before[rel][0]:
            problems.append(f"{rel}: mtime changed")
        elif after[rel][1] != before[rel][1]:
            problems.append(f"{rel}: content changed (same mtime)")
    for rel in sorted(set(after) - set(before)):
        if not may_change(rel, mode):
            problems.append(f"{rel}: new file outside {mode}'s outputs and the reports")
    for other in OTHER_MODES:
        if not any(belongs_to(rel, other) for rel in kept):
            problems.append(f"no output of {other} in the results: nothing to compare")
    if not any(belongs_to(rel, mode) for rel in after):
        problems.append(f"no output of {mode} in the results")
    return problems


def identity_problems(metrics: dict[str, Any], old_shards: dict[str, str] | None,
                      sidecars: dict[str, str], runs: list[dict[str, Any]]) -> list[str]:
    """Patok's new metrics.json: records the fingerprints (sha256 of each sidecar's text) of the
    shards on disk, not the old ones, and the run started from step 0 (the stale run was removed)."""
    problems = []
    recorded = metrics.get("run_identity", {}).get("shards")
    expected = {Path(p).name.removesuffix(".json"): hashlib.sha256(text.encode()).hexdigest()
                for p, text in sidecars.items()}
    if recorded != expected:
        problems.append(f"metrics.json records shard fingerprints {recorded}, the shards on disk are {expected}")
    if old_shards is not None and recorded == old_shards:
        problems.append("metrics.json still records the shard fingerprints from before the edit")
    if not runs or runs[0].get("start_step") != 0:
        problems.append(f"the retrained run did not start from step 0 (runs.jsonl: {runs})")
    return problems


# -- the check ------------------------------------------------------------------------------------

def patok_only_file() -> Path:
    sys.path.insert(0, str(REPO / "src"))
    from morphcpt.shards import SOURCE_MODES

    rel = next(r for r, modes in SOURCE_MODES.items() if tuple(modes) == (EDITED_MODE,) and r.endswith(".py"))
    return REPO / "src" / "morphcpt" / rel


def _train_dirs(results: Path) -> list[Path]:
    return sorted(results.glob(f"*/{EDITED_MODE}/train"))


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text()) if path.is_file() else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results_dir", type=Path, help="results of a finished demo (e.g. results-demo)")
    ap.add_argument("--configfile", default="config/demo.yaml")
    ap.add_argument("--target", default="demo")
    ap.add_argument("--log", type=Path, help="where to keep Snakemake's output (default: a file in the temporary folder)")
    args = ap.parse_args(argv)
    results = args.results_dir.resolve()
    train_dirs = _train_dirs(results)
    if not train_dirs or not all((d / "metrics.json").is_file() for d in train_dirs):
        print(f"check_partial_rerun: {results}: no finished {EDITED_MODE} training (*/{EDITED_MODE}/train/metrics.json); "
              f"run the demo first (make demo)", file=sys.stderr)
        return 1
    old_shards = {d: (_read_json(d / "metrics.json") or {}).get("run_identity", {}).get("shards") for d in train_dirs}
    log_path = args.log or Path(tempfile.gettempdir()) / f"check_partial_rerun.{os.getpid()}.log"
    edited = patok_only_file()
    original, st = edited.read_bytes(), edited.stat()
    t0 = time.time()
    before = snapshot(results)
    try:
        edited.write_bytes(original + f"# check_partial_rerun.py: a harmless edit ({time.time():.0f})\n".encode())
        cmd = [sys.executable, "-m", "snakemake", "--profile", "profiles/local", args.target,
               # results_dir exactly as the demo got it: an absolute path for a relative one would
               # change every output path and the params built from them
               "--configfile", args.configfile, "--config", f"results_dir={args.results_dir}"]
        # The jobs import morphcpt from this checkout (the edited copy), whatever is installed.
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
               "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "src"), os.environ.get("PYTHONPATH")]))}
        print(f"check_partial_rerun: edited {edited.relative_to(REPO)}; running {' '.join(cmd[1:])} (log: {log_path})",
              flush=True)
        with open(log_path, "w") as log:
            rc = subprocess.run(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
    finally:
        edited.write_bytes(original)
        os.utime(edited, ns=(st.st_atime_ns, st.st_mtime_ns))
    log_text = log_path.read_text()
    problems = [] if rc == 0 else [f"the rerun failed (exit {rc}); see {log_path}:\n{log_text[-3000:]}"]
    jobs = parse_jobs(log_text)
    problems += job_problems(jobs)
    problems += file_problems(before, snapshot(results))
    for d in train_dirs:
        metrics = _read_json(d / "metrics.json") or {}
        sidecars = {str(p): p.read_text() for p in sorted(results.glob(f"shards/*/{EDITED_MODE}/*.json"))}
        runs = [json.loads(ln) for ln in (d / "runs.jsonl").read_text().splitlines()] if (d / "runs.jsonl").is_file() else []
        problems += [f"{d / 'metrics.json'}: {p}" for p in identity_problems(metrics, old_shards[d], sidecars, runs)]
    counts: dict[str, int] = {}
    for rule, wc in jobs:
        key = f"{rule}[{wc.get('mode', wc.get('eval_mode', '-'))}]"
        counts[key] = counts.get(key, 0) + 1
    print(f"check_partial_rerun: jobs run: {', '.join(f'{k} x{n}' for k, n in sorted(counts.items()))}; "
          f"{time.time() - t0:.0f} s", flush=True)
    if problems:
        print(f"check_partial_rerun: FAILED ({len(problems)} problems; log {log_path}):", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return 1
    kept = sum(1 for rel in before if not may_change(rel))
    print(f"check_partial_rerun: passed: only {EDITED_MODE}'s jobs and the reports ran; {kept} outputs of other "
          f"modes and shared stages untouched (mtime and sha256); {EDITED_MODE}'s metrics.json records the new "
          f"shard fingerprints and the run started over from step 0")
    return 0


if __name__ == "__main__":
    sys.exit(main())
