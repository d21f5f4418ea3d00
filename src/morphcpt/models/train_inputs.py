"""What a training run consumes, checked before anything runs: the shards (made with the model's
tokenizer, vocabulary and eos, one mode) and the run identity (checkpoints are resumed only by a
run with the same inputs)."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

from morphcpt.errors import MorphcptError
from morphcpt.fileio import write_json_atomic

# Training keys that decide what a checkpoint contains: a rerun with other values must not resume.
IDENTITY_TRAINING_KEYS = ("seq_length", "global_batch_size", "micro_batch_size", "max_steps", "lr", "min_lr",
                          "warmup_steps", "weight_decay", "adam_beta1", "adam_beta2", "adam_eps", "clip_grad",
                          "precision", "attention")
# Files of a train folder that describe one run: removed when a new run starts there.
RUN_FILES = ("metrics.jsonl", "runs.jsonl", "step0_gate.json", "step0_reference.json")
RUN_DIRS = ("index_cache", "nemo_logs")  # the data index (made from the shards) and NeMo's logs


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def tokenizer_fingerprint(tokenizer_dir: Path) -> str:
    """The fingerprint the shard writer records (morphcpt.tokenization.TokenizerAdapter)."""
    try:
        from morphcpt.tokenization import TokenizerAdapter
    except ImportError as exc:
        raise MorphcptError(f"morphcpt.tokenization.TokenizerAdapter is not available ({exc}); "
                            "the shard fingerprint check cannot run") from None
    return TokenizerAdapter.from_dir(Path(tokenizer_dir)).fingerprint


def shard_prefixes(shard_files: list[str]) -> list[str]:
    """Unique shard prefixes (path without .bin/.idx/.json), in order."""
    prefixes = [re.sub(r"\.(bin|idx|json)$", "", str(f)) for f in shard_files]
    return list(dict.fromkeys(prefixes))


def check_shards(prefixes: list[str], tokenizer_dir: Path, vocab_size: int,
                 eos_id: int | None = None) -> list[dict[str, Any]]:
    """Refuse shards made with another tokenizer (fingerprint), vocabulary or eos (the data
    module's eod is the tokenizer's eos), or with missing files."""
    if not prefixes:
        raise MorphcptError("no shards given to train on")
    expected = tokenizer_fingerprint(tokenizer_dir)
    sidecars = []
    for prefix in prefixes:
        for ext in (".bin", ".idx", ".json"):
            if not Path(prefix + ext).is_file():
                raise MorphcptError(f"{prefix + ext}: missing; rerun the tokenize rule")
        sidecar_path = Path(prefix + ".json")
        sidecar = json.loads(sidecar_path.read_text())
        missing = [k for k in ("tokenizer_fingerprint", "vocab_size", "eos_id", "mode") if k not in sidecar]
        if missing:
            raise MorphcptError(f"{sidecar_path}: sidecar lacks {missing}; rerun the tokenize rule")
        if sidecar["tokenizer_fingerprint"] != expected:
            raise MorphcptError(f"{sidecar_path}: shard tokenizer fingerprint {sidecar['tokenizer_fingerprint'][:12]} "
                                f"differs from the model's ({expected[:12]}, {tokenizer_dir}); the shard was made "
                                "with another tokenizer: rerun tokenize for this model's tokenizer")
        if int(sidecar["vocab_size"]) != vocab_size:
            raise MorphcptError(f"{sidecar_path}: vocab_size {sidecar['vocab_size']} != the model's {vocab_size}")
        if eos_id is not None and int(sidecar["eos_id"]) != eos_id:
            raise MorphcptError(f"{sidecar_path}: documents end with id {sidecar['eos_id']}, but the model's eos "
                                f"(the data module's eod) is {eos_id}; rerun tokenize")
        sidecars.append(sidecar)
    modes = {s["mode"] for s in sidecars}
    if len(modes) != 1:
        raise MorphcptError(f"shards {prefixes[0]}...: mixed modes {sorted(modes)}; one run trains one mode")
    return sidecars


def run_identity(spec: dict[str, Any]) -> dict[str, Any]:
    """What the checkpoints of a run depend on: import, shards, recipe, seed, parallel layout."""
    hf_dir = Path(spec["hf_dir"])
    manifest = hf_dir / "manifest.json"
    if manifest.is_file():  # sha256 of every base-model file (download_model writes it)
        base = sha256_text(json.dumps(json.loads(manifest.read_text())["files"], sort_keys=True))
    else:
        base = sha256_text("\n".join(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}"
                                     for p in sorted(hf_dir.iterdir()) if p.is_file()))
    shards = {Path(p).name: sha256_text(Path(p + ".json").read_text()) for p in spec["shard_prefixes"]}
    training = {k: spec["training"].get(k) for k in IDENTITY_TRAINING_KEYS}
    # The optimizer's state is saved sharded (distributed optimizer) or whole: a resume must use
    # the same layout.
    return {"base_model": base, "shards": shards, "training": training,
            "seed": spec["seed"], "tensor": spec["tensor"], "pipeline": spec["pipeline"],
            "distributed_optimizer": spec["parallel_settings"]["distributed_optimizer"]}


def check_run_identity(spec: dict[str, Any]) -> list[str]:
    """Resume only checkpoints made from the same inputs: when the recorded run identity differs
    (a rerun because shards or a config value changed), the stale run is removed and training starts
    over from the imported weights; the new identity is recorded. Returns the paths removed."""
    train_dir, ckpt_dir = Path(spec["train_dir"]), Path(spec["checkpoint_dir"])
    ident_path = train_dir / "run_identity.json"
    ident = run_identity(spec)
    has_checkpoints = ckpt_dir.is_dir() and any(ckpt_dir.iterdir())
    old = json.loads(ident_path.read_text()) if ident_path.is_file() else None
    if old == ident:
        return []
    if has_checkpoints and old is None:
        raise MorphcptError(f"{ckpt_dir}: checkpoints of unknown origin (no {ident_path.name}); delete the folder "
                            "to train from the imported weights")
    removed = remove_stale_run(train_dir, ckpt_dir)
    if removed and old is not None:
        changed = sorted(k for k in ident if old.get(k) != ident[k])
        print(f"train: the run in {train_dir} was made from different inputs (changed: {', '.join(changed)}); "
              f"removed it to start over from the imported weights: {', '.join(removed)}", flush=True)
    write_json_atomic(ident_path, ident, sort_keys=True)
    return removed


def remove_stale_run(train_dir: Path, ckpt_dir: Path) -> list[str]:
    """Delete what a run of other inputs left: its checkpoints, its per-run files and the data
    index cache (keyed by shard paths, not contents). Returns the paths removed."""
    removed = []
    for path in [ckpt_dir, *(train_dir / name for name in (*RUN_FILES, *RUN_DIRS))]:
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        else:
            continue
        removed.append(str(path))
    return removed
