"""File helpers shared by every stage: content hashes and JSON written atomically."""

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
