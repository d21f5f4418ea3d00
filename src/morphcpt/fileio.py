"""File helpers shared by every stage: content hashes, JSON written atomically, umask-respecting
modes, and out-of-disk-space handling: a writer that runs out of space removes its temporary files
and stops with one line naming the path, the space it needs and the space left (NoSpaceError)."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from morphcpt.errors import MorphcptError

NO_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def sha256_file(path: str | Path, block: int = 1 << 20) -> str:
    """sha256 hex digest of a file, read in blocks (corpus files can be GBs)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def is_no_space(exc: BaseException) -> bool:
    """Whether `exc` is the OS saying the disk (or the user's quota) is full."""
    return isinstance(exc, OSError) and exc.errno in NO_SPACE_ERRNOS


# How writers that do not raise OSError report a full disk: safetensors' Rust writer ("No space left
# on device (os error 28)", StorageFull), torch.distributed.checkpoint's CheckpointException (the
# ranks' errors as text, when they kept the OS error's). Matched in the message when no OSError is
# in the chain; writers that drop it altogether are left to disk_was_full.
NO_SPACE_TEXTS = ("No space left on device", "os error 28", "StorageFull", "Disk quota exceeded", "os error 122")


def caused_by_no_space(exc: BaseException | None) -> bool:
    """Whether a full disk is behind `exc`: an ENOSPC/EDQUOT OSError anywhere in its chain, or a
    wrapper whose message says so (writers of safetensors, torch DCP and Megatron wrap the OSError)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if is_no_space(exc) or any(text in str(exc) for text in NO_SPACE_TEXTS):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def disk_was_full(exc: BaseException, path: str | Path, needed_bytes: float | None) -> bool:
    """Whether a full disk stopped the writer of `path`: caused_by_no_space(exc), or, for a writer
    that hides the OS error (torch.save's zip writer, under torch DCP, says only "unexpected pos"),
    less space free there than the write needed. Call it before the partial output is removed."""
    if caused_by_no_space(exc):
        return True
    free = free_bytes(path)
    return needed_bytes is not None and free is not None and free < needed_bytes


def tree_bytes(path: str | Path) -> int:
    """Bytes of the files under `path` (a file: its size; missing: 0)."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    total = 0
    for p in path.rglob("*"):
        with contextlib.suppress(OSError):
            if p.is_file() and not p.is_symlink():
                total += p.stat().st_size
    return total


def free_bytes(path: str | Path) -> int | None:
    """Bytes free to this user on the filesystem that holds `path` (or its nearest existing folder)."""
    path = Path(path).absolute()
    for folder in (path, *path.parents):
        if folder.exists():
            try:
                return shutil.disk_usage(folder).free
            except OSError:
                return None
    return None


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")


class NoSpaceError(MorphcptError):
    """The disk filled up while `path` was written; the writer's temporary files are gone."""

    def __init__(self, path: str | Path, needed_bytes: float | None = None, cleaned: bool = True):
        self.path, self.needed_bytes, self.free = Path(path), needed_bytes, free_bytes(path)
        need = f"it needs about {human_bytes(needed_bytes)}, " if needed_bytes else ""
        free = f"{human_bytes(self.free)} free there" if self.free is not None else "free space unknown"
        left = ("no partial or temporary file was left" if cleaned else
                "Snakemake deletes the outputs of the failed job")
        super().__init__(f"{self.path}: out of disk space ({need}{free}); {left}. Free space on that "
                         "filesystem or set results_dir to a larger disk, then rerun")


@contextlib.contextmanager
def removed_on_failure(tmp_paths: Iterable[str | Path], target: str | Path,
                       needed_bytes: int | Callable[[], int | None] | None = None, *,
                       measured_at: str | Path | None = None) -> Iterator[None]:
    """Run a block that writes `tmp_paths` (files or folders, renamed to their final names at its
    end; the list is read at failure time, so the block may add to it). On any error they are
    removed; a full disk becomes NoSpaceError(target, needed_bytes), where `needed_bytes` may be a
    callable evaluated only then (e.g. extrapolated from the work done). With `measured_at` (a
    folder on the filesystem written to), a writer that hides the OS error counts as stopped by a
    full disk too (disk_was_full, measured there before the partial output is removed)."""
    try:
        yield
    except BaseException as exc:
        if measured_at is not None:
            needed = needed_bytes() if callable(needed_bytes) else needed_bytes
            full = disk_was_full(exc, measured_at, needed)
        else:
            full = is_no_space(exc)
        for tmp in map(Path, tmp_paths):
            if tmp.is_dir() and not tmp.is_symlink():
                shutil.rmtree(tmp, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    tmp.unlink(missing_ok=True)
        if full:
            if measured_at is None:
                needed = needed_bytes() if callable(needed_bytes) else needed_bytes
            raise NoSpaceError(target, needed) from None
        raise


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write `data` to a temporary name and rename it, so readers never see a half-written file
    (and a full disk leaves no temporary file: NoSpaceError)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with removed_on_failure([tmp], path, len(data)):
        tmp.write_bytes(data)
        tmp.replace(path)


def write_json_atomic(path: str | Path, data: Any, sort_keys: bool = False, allow_nan: bool = True) -> None:
    """JSON through write_bytes_atomic. allow_nan=False: strict JSON."""
    text = json.dumps(data, indent=1, ensure_ascii=False, sort_keys=sort_keys, allow_nan=allow_nan) + "\n"
    write_bytes_atomic(path, text.encode("utf-8"))


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def apply_umask(path: str | Path) -> None:
    """Give a file or folder made by `tempfile` (mode 0600/0700) the mode a plain open() or mkdir()
    would have given it (0666/0777 minus the umask, executables 0777), so outputs renamed from it
    are not private. A folder's whole tree gets it: safetensors (0.8) writes every
    `model.safetensors` 0600, whoever calls it (save_pretrained, NeMo's export)."""
    mask = current_umask()
    path = Path(path)
    paths = [path, *path.rglob("*")] if path.is_dir() and not path.is_symlink() else [path]
    for p in paths:
        if p.is_symlink():
            continue
        base = 0o777 if p.is_dir() or p.stat().st_mode & 0o111 else 0o666
        os.chmod(p, base & ~mask)


def write_text_atomic(path: str | Path, text: str) -> None:
    """UTF-8 text through write_bytes_atomic (no half-written tables or pages)."""
    write_bytes_atomic(path, text.encode("utf-8"))


def write_csv_atomic(path: str | Path, fields: list[str] | tuple[str, ...], rows: list[dict[str, Any]]) -> None:
    """A CSV of `rows` (missing or None cells empty, extra keys an error) written atomically."""
    import csv
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(fields), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: "" if r.get(k) is None else r[k] for k in fields} | {k: r[k] for k in r if k not in fields}
                     for r in rows)
    write_text_atomic(path, buf.getvalue())


def save_figure_atomic(fig: Any, path: str | Path, dpi: int = 110) -> None:
    """Save a matplotlib figure under a temporary name (same suffix, so the format is kept) and rename it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    with removed_on_failure([tmp], path):
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
        tmp.replace(path)
