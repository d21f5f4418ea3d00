"""The download_model stage: a HF snapshot at a pinned revision, or a synthetic tiny model.

The model folder is the directory of `layout.hf_manifest(family)`; the manifest (every file with
its size and sha256) is written last, so its existence means the folder is complete. The HF token
comes from the environment only (HF_TOKEN or HUGGING_FACE_HUB_TOKEN, or huggingface_hub's own
login; see morphcpt.hub) and is never logged or written anywhere.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

from morphcpt.errors import MorphcptError
from morphcpt.fileio import apply_umask, sha256_file
from morphcpt.hub import explain_hub_error, hf_token

# Only what the later stages need: weights as safetensors, configs, tokenizer files.
HF_ALLOW_PATTERNS = ["*.safetensors", "*.safetensors.index.json", "config.json", "generation_config.json",
                     "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "tokenizer.model",
                     "added_tokens.json"]
MANIFEST_NAME = "manifest.json"



def write_manifest(model_dir: Path, info: dict[str, Any]) -> Path:
    """Write `model_dir/manifest.json` (files, sizes, sha256 + `info`) via a temp name."""
    files = {}
    for p in sorted(model_dir.rglob("*")):
        if p.is_file() and p.name != MANIFEST_NAME and not p.name.startswith("."):
            rel = p.relative_to(model_dir).as_posix()
            files[rel] = {"bytes": p.stat().st_size, "sha256": sha256_file(p)}
    if not any(f.endswith(".safetensors") for f in files) or "config.json" not in files:
        raise MorphcptError(f"{model_dir}: no safetensors weights or config.json; the download is incomplete")
    manifest = {**info, "files": files}
    out = model_dir / MANIFEST_NAME
    tmp = out.with_name(f".{MANIFEST_NAME}.tmp")
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    tmp.rename(out)
    return out


def verify_manifest(manifest_path: Path) -> dict[str, Any]:
    """Check every file of a manifest (size + sha256); return the manifest."""
    manifest_path = Path(manifest_path)
    manifest = json.loads(manifest_path.read_text())
    for rel, meta in manifest["files"].items():
        p = manifest_path.parent / rel
        if not p.is_file() or p.stat().st_size != meta["bytes"] or sha256_file(p) != meta["sha256"]:
            raise MorphcptError(f"{p}: missing or changed since {manifest_path} was written; rerun download_model")
    return manifest


def _replace_dir(tmp: Path, dest: Path) -> None:
    """Move the finished `tmp` folder to `dest`, replacing whatever partial folder is there."""
    if dest.exists():
        shutil.rmtree(dest)
    tmp.rename(dest)


def download_hf(hf_id: str, revision: str, dest: Path, config_key: str = "families.<family>") -> None:
    """snapshot_download of `hf_id` at `revision` (safetensors, configs, tokenizer only) into `dest`.
    `config_key` (families.<name>) is named in the fix of a failed download."""
    from huggingface_hub import snapshot_download

    token = hf_token()
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        try:
            snapshot_download(repo_id=hf_id, revision=revision, allow_patterns=HF_ALLOW_PATTERNS,
                              local_dir=str(tmp), token=token)
        except Exception as exc:  # gated, 401/403, unknown repo or revision, offline: explained with the fix
            raise MorphcptError(explain_hub_error(exc, hf_id, revision, config_key=config_key)) from None
        apply_umask(tmp)  # mkdtemp made it 0700; the model folder gets the mode mkdir would give
        shutil.rmtree(tmp / ".cache", ignore_errors=True)  # huggingface_hub's local_dir metadata
        _replace_dir(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def download_model(family: dict[str, Any], manifest_path: Path, seed: int, name: str = "<family>") -> Path:
    """Materialise a family's HF model folder next to `manifest_path`; write the manifest last.
    `name` is the family's key in the config (named in error messages)."""
    manifest_path = Path(manifest_path)
    model_dir = manifest_path.parent
    if manifest_path.exists():
        manifest_path.unlink()  # a stale manifest must never vouch for a new folder
    if family["source"] == "hf":
        download_hf(family["hf_id"], family["revision"], model_dir, config_key=f"families.{name}")
        info = {"source": "hf", "hf_id": family["hf_id"], "revision": family["revision"]}
    elif family["source"] == "synthetic":
        from morphcpt.models.synthetic import synthetic_spec, write_synthetic_model

        spec = synthetic_spec(family)
        spec.setdefault("seed", seed)
        write_synthetic_model(model_dir, arch=family["arch"], **spec)
        info = {"source": "synthetic", "arch": family["arch"], "synthetic": spec}
    else:
        raise MorphcptError(f"unknown model source {family['source']!r}; use hf or synthetic")
    return write_manifest(model_dir, info)
