"""File helpers shared by every stage: content hashes, JSON written atomically, umask-respecting modes."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any


def sha256_file(path: str | Path, block: int = 1 << 20) -> str:
    """sha256 hex digest of a file, read in blocks (corpus files can be GBs)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def write_json_atomic(path: str | Path, data: Any, sort_keys: bool = False) -> None:
    """Write JSON to a temporary name and rename it, so readers never see a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False, sort_keys=sort_keys) + "\n")
    tmp.replace(path)


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
