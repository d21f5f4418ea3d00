"""Glue between Snakemake `script:` adapters and the package: log redirection and errors.

Every adapter in workflow/scripts/ calls `run_stage(snakemake, func)`: the rule's stdout and
stderr go to its `log:` file, and a MorphcptError ends the job with its one-line message
(in the log and on stderr of the job) instead of a traceback.
"""

from __future__ import annotations

import contextlib
import sys
import traceback
from pathlib import Path
from typing import Any, Callable

from morphcpt.errors import MorphcptError


@contextlib.contextmanager
def _redirect_to(log_path: str | None):
    if not log_path:
        yield
        return
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a", buffering=1) as log:
        with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            yield


def run_stage(snakemake: Any, func: Callable[[Any], None]) -> None:
    """Run `func(snakemake)` with output in the rule's log; exit 1 with one line on MorphcptError."""
    log_path = snakemake.log[0] if len(snakemake.log) else None
    rule = getattr(snakemake, "rule", "stage")
    try:
        with _redirect_to(log_path):
            try:
                func(snakemake)
            except MorphcptError as exc:
                print(f"{rule}: error: {exc}", file=sys.stderr)
                raise
            except Exception:
                traceback.print_exc()
                raise
    except MorphcptError as exc:
        print(f"{rule}: error: {exc}" + (f" (log: {log_path})" if log_path else ""), file=sys.stderr)
        sys.exit(1)


def not_implemented(snakemake: Any, stage: str) -> None:
    """Placeholder body of a stage whose issue has not landed yet: fail loudly, never fake outputs."""

    def fail(_):
        raise MorphcptError(f"not implemented yet: {stage}")

    run_stage(snakemake, fail)
