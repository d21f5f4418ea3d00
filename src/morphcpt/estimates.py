"""Storage and compute estimates per rule, from config (docs/design.md §9).

Used twice: as each rule's `out_mb` resource (so a scheduler or a reader of the DAG sees the
expected size of a job's outputs) and by `morphcpt plan` to sum them over a target.
"""

from __future__ import annotations

from typing import Any

from morphcpt.train_nodes import train_gpus

LLAMA3_VOCAB = 128_256


def family_params(config: dict[str, Any], family: str) -> float:
    """Parameter count of a family: from config for real models, computed for synthetic ones."""
    fam = config["families"][family]
    if fam.get("params"):
        return float(fam["params"])
    syn = fam.get("synthetic", {})
    h, ffn, layers = syn.get("hidden_size", 64), syn.get("intermediate_size", 128), syn.get("num_layers", 2)
    heads, kv = syn.get("num_heads", 4), syn.get("num_kv_heads", 2)
    head_dim = h // heads
    attn = h * head_dim * (heads + 2 * kv) + heads * head_dim * h
    per_layer = attn + 3 * h * ffn + 2 * h
    return float(2 * LLAMA3_VOCAB * h + layers * per_layer + h)


# Bytes per parameter of a kept training checkpoint (Megatron dist checkpoint), by
# training.precision: the model weights. The optimizer state (bf16-mixed: fp32 main params + two
# fp32 Adam moments, 12 B/param) stays only in the newest checkpoint while a run trains, and in
# none once it finished (morphcpt.models.checkpoints.prune_older_optimizer_states).
CHECKPOINT_WEIGHT_BYTES = {"bf16-mixed": 2, "32": 4}
# context/ of each checkpoint: the model config and a copy of the tokenizer files (Llama 3: 17 MB).
CHECKPOINT_CONTEXT_BYTES = 1.7e7


def kept_checkpoints(config: dict[str, Any]) -> int:
    """Checkpoints a train job keeps (morphcpt.models.checkpoints.kept_steps): one every
    checkpoint_every steps, and the one after max_steps."""
    t = config["training"]
    return len(set(range(t["checkpoint_every"], t["max_steps"] + 1, t["checkpoint_every"])) | {t["max_steps"]})


def checkpoint_bytes(config: dict[str, Any], family: str) -> float:
    """Bytes a finished train job leaves on disk: each kept checkpoint written once, weights only
    (the optimizer state of each is removed once a newer checkpoint is complete; the final one is
    saved without it)."""
    precision = str(config["training"].get("precision", "bf16-mixed"))
    n = kept_checkpoints(config)
    return family_params(config, family) * n * CHECKPOINT_WEIGHT_BYTES[precision] + n * CHECKPOINT_CONTEXT_BYTES


def train_tokens(config: dict[str, Any]) -> float:
    t = config["training"]
    return float(t["max_steps"] * t["global_batch_size"] * t["seq_length"])


def gpu_hours_per_train_job(config: dict[str, Any], family: str) -> float:
    """6·N·D FLOPs at the configured MFU of the configured peak."""
    plan = config["plan"]
    flops = 6.0 * family_params(config, family) * train_tokens(config)
    return flops / (plan["mfu"] * plan["gpu_peak_tflops"] * 1e12) / 3600.0


def train_wall_minutes(config: dict[str, Any], family: str) -> float | None:
    """Wall time of one train job: its GPU-hours over its GPUs, gpus x nodes (None for a CPU family)."""
    gpus = train_gpus(config, family)
    return gpu_hours_per_train_job(config, family) / gpus * 60.0 if gpus else None


def weight_bytes_per_param(config: dict[str, Any], family: str) -> float:
    """Bytes per parameter of a model folder (HF download, NeMo import, export): the config's
    `plan.bytes_per_param_weights` (bf16 for real models); a synthetic model is written in fp32
    (morphcpt.models.synthetic), and so are its import and exports."""
    if config["families"][family].get("source") == "synthetic":
        return 4.0
    return float(config["plan"]["bytes_per_param_weights"])


def output_bytes(config: dict[str, Any], rule: str, wildcards: dict[str, str] | None = None) -> float:
    """Expected bytes written by one job of `rule` (0 for rules whose outputs are small)."""
    wc = dict(wildcards or {})
    plan, corpus = config["plan"], config["corpus"]
    family = wc.get("family")
    if rule == "tokenize":
        ratio = plan["token_ratio"].get(wc.get("mode", "vanilla"), 1.0)
        tokens = corpus["estimated_tokens"] / corpus["chunks"] * ratio
        docs = corpus["estimated_documents"] / corpus["chunks"]
        return tokens * plan["bytes_per_token"] + docs * plan["bytes_per_document"]
    if rule in ("download_model", "import_nemo", "export") and family:
        return family_params(config, family) * weight_bytes_per_param(config, family)
    if rule == "train" and family:
        return checkpoint_bytes(config, family)
    if rule in ("download_corpus", "split_chunks"):
        # raw UTF-8 text: roughly 3.5 bytes per canonical token for Tagalog web text
        return corpus["estimated_tokens"] * 3.5
    if rule == "evaluate":
        return eval_tokens(config) * EVAL_BYTES_PER_TOKEN
    return 0.0


def out_mb(config: dict[str, Any], rule: str, wildcards=None) -> int:
    """`output_bytes` in MB (rounded up), for the `out_mb` resource."""
    wc = dict(wildcards.items()) if wildcards is not None and hasattr(wildcards, "items") else wildcards
    return int(-(-output_bytes(config, rule, wc) // 1e6))


# What scoring one model on the full pinned benchmarks costs, counted on pacute-bench@dcab16b with
# the Llama-3 tokenizer at 0-shot: MCQ log-likelihood requests (one per option) and GEN items with
# the mean tokens of one worked example (context + answer; CUTE's hold its 4 in-prompt examples)
# and the mean max_gen_toks. A k-shot prompt is (k + 1) examples long.
EVAL_COST = {
    "pacute": {"mcq_items": 2640, "ll_requests": 10278, "ll_example_tokens": 45, "gen_items": 2240,
               "gen_example_tokens": 25, "gen_new_tokens": 13},
    "hierarchical": {"mcq_items": 600, "ll_requests": 2371, "ll_example_tokens": 38, "gen_items": 600,
                     "gen_example_tokens": 19, "gen_new_tokens": 10},
    "cute": {"mcq_items": 0, "ll_requests": 0, "ll_example_tokens": 0, "gen_items": 1400,
             "gen_example_tokens": 148, "gen_new_tokens": 12},
    "langgame": {"mcq_items": 1000, "ll_requests": 4000, "ll_example_tokens": 26, "gen_items": 1000,
                 "gen_example_tokens": 26, "gen_new_tokens": 8},
    "multi_digit_addition": {"mcq_items": 1000, "ll_requests": 4000, "ll_example_tokens": 8, "gen_items": 1000,
                             "gen_example_tokens": 8, "gen_new_tokens": 9},
}
EVAL_EMBEDDED_SHOTS = {"cute": 4}  # CUTE prompts hold their examples: none added
# Measured wall time of an evaluate job over its 2·N·tokens FLOP time at the plan's MFU (issue 20:
# ~20k log-likelihood requests + 6k generations, ~2.6 M context tokens; 8B on one H100 ≈ 6-12 min):
# padding, per-token generation steps and model loading.
EVAL_MEASURED_FACTOR = 3.0
# What an evaluate job writes per token it scores: the lm-eval task folders hold every prompt with
# its examples (10.6 MB for the pinned files at 3-shot: 3.1 B/token), plus the result JSONs.
EVAL_BYTES_PER_TOKEN = 4.0


def eval_tokens(config: dict[str, Any]) -> float:
    """Tokens one evaluate job runs through the model: every log-likelihood request's context and
    option, every generation's context and new tokens, with the configured shots and limit."""
    ev = config["evaluation"]
    shots = ev.get("num_fewshot") or {}
    limit = ev.get("limit")
    total = 0.0
    for benchmark in ev["benchmarks"]:
        cost = EVAL_COST[benchmark]
        added = {f: 0 if benchmark in EVAL_EMBEDDED_SHOTS else int(shots.get(f, 3)) for f in ("mcq", "gen")}
        mcq = min(limit, cost["mcq_items"]) if limit else cost["mcq_items"]
        gen = min(limit, cost["gen_items"]) if limit else cost["gen_items"]
        options = cost["ll_requests"] / cost["mcq_items"] if cost["mcq_items"] else 0
        total += mcq * options * cost["ll_example_tokens"] * (added["mcq"] + 1)
        total += gen * (cost["gen_example_tokens"] * (added["gen"] + 1) + cost["gen_new_tokens"])
    return total


def evaluate_wall_minutes(config: dict[str, Any], family: str) -> float | None:
    """Wall time of one evaluate job (one model, every benchmark): 2·N·tokens at the plan's MFU of the
    peak of its GPUs, times the measured factor (None for a CPU job)."""
    gpus = int((config.get("resources", {}).get("evaluate") or {}).get("gpu", 0) or 0)
    if not gpus:
        return None
    plan = config["plan"]
    seconds = 2.0 * family_params(config, family) * eval_tokens(config) / (plan["mfu"] * plan["gpu_peak_tflops"] * 1e12 * gpus)
    return seconds / 60.0 * EVAL_MEASURED_FACTOR
