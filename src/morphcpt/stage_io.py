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

from morphcpt.container import runs_in_image
from morphcpt.cuda_devices import check_cuda_devices
from morphcpt.errors import MorphcptError
from morphcpt.fileio import NoSpaceError, free_bytes, human_bytes, is_no_space


class _LogStream:
    """The rule's log file as stdout/stderr. When a write to it fails (a full disk), the text goes to
    the job's own stderr instead: the reason a job failed must not vanish with the disk space."""

    def __init__(self, log, fallback):
        self._log, self._fallback, self.broken = log, fallback, False

    def write(self, text: str) -> int:
        if not self.broken:
            try:
                return self._log.write(text)
            except OSError:
                self.broken = True
        return self._fallback.write(text)

    def flush(self) -> None:
        if not self.broken:
            try:
                self._log.flush()
            except OSError:
                self.broken = True
        self._fallback.flush()

    def __getattr__(self, name):
        return getattr(self._log, name)


@contextlib.contextmanager
def _redirect_to(log_path: str | None):
    if not log_path:
        yield
        return
    try:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        log = open(log_path, "a", buffering=1)
    except OSError as exc:
        print(f"cannot write the log {log_path} ({exc.strerror}); messages go to stderr", file=sys.stderr)
        yield
        return
    stream = _LogStream(log, sys.stderr)
    try:
        with contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
            yield
    finally:
        with contextlib.suppress(OSError):
            log.close()


def _planned_bytes(snakemake: Any) -> float | None:
    """What the plan expects this job to write (its `out_mb` resource), in bytes."""
    mb = getattr(getattr(snakemake, "resources", None), "out_mb", None)
    return float(mb) * 1e6 if isinstance(mb, (int, float)) and mb > 0 else None


def _first_output(snakemake: Any) -> Path:
    outputs = list(getattr(snakemake, "output", []) or [])
    return Path(outputs[0]) if outputs else Path.cwd()


def _warn_low_space(snakemake: Any) -> None:
    """A line in the log when the outputs' filesystem has less free space than the plan expects."""
    needed = _planned_bytes(snakemake)
    free = free_bytes(_first_output(snakemake))
    if needed and free is not None and free < needed:
        print(f"warning: this job is expected to write about {human_bytes(needed)} (morphcpt plan's estimate) "
              f"under {_first_output(snakemake).parent}, but only {human_bytes(free)} is free there")


def run_stage(snakemake: Any, func: Callable[[Any], None]) -> None:
    """Run `func(snakemake)` with output in the rule's log; exit 1 with one line on MorphcptError.
    Out of disk space (an OSError the stage did not handle itself) is such a line too."""
    log_path = snakemake.log[0] if len(snakemake.log) else None
    rule = getattr(snakemake, "rule", "stage")
    try:
        with _redirect_to(log_path):
            try:
                _warn_low_space(snakemake)
                if not runs_in_image(rule, getattr(snakemake, "config", None) or {}):  # the image checks its own
                    check_cuda_devices(rule, int(getattr(getattr(snakemake, "resources", None), "gpu", 0) or 0))
                try:
                    func(snakemake)
                except OSError as exc:
                    if not is_no_space(exc):
                        raise
                    raise NoSpaceError(exc.filename or _first_output(snakemake), _planned_bytes(snakemake),
                                       cleaned=False) from None
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
