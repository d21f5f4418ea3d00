"""GPU memory per GPU of a family's training job, estimated from its shape and parallelism.

`morphcpt plan` shows it for every family it trains and warns when it exceeds
`plan.gpu_memory_gib`. The estimate is deliberately simple and written out term by term so a
reader can redo it by hand (tests/foundation/test_memory_estimate.py does):

- weights: params × (2 B bf16 | 4 B fp32) / (tensor × pipeline)
- grads: params × (4 B when reduced in fp32 or training in fp32, else 2 B) / (tensor × pipeline)
- optimizer: Adam moments (8 B), plus for bf16 params an fp32 master copy (4 B) and, when grads
  are bf16, an fp32 grad copy (4 B), per param / (tensor × pipeline), divided by the data-parallel
  size when the distributed optimizer shards it (Megatron's table: 6 + 12/d B/param for bf16
  params with fp32 grads, 4 + 16/d with bf16 grads, 8 + 8/d in fp32; 18/20/16 without sharding)
- activations: what autograd keeps per token and layer for one micro batch (below), × layers
  (the first pipeline stage holds `pipeline` micro batches of layers/pipeline layers: the same)
- logits: the output layer's logits (compute dtype, plus Gemma 2's soft-capped copy) and the
  loss's fp32 softmax, for one micro batch, vocab split over tensor ranks
- reserve: a fixed `plan.gpu_memory_reserve_gib` (CUDA context, NCCL buffers, allocator slack)

Activations kept per token and layer, in elements of the compute dtype (no recomputation):
every norm's input (2 norms for Llama, 4 for Gemma 2), the inputs of the QKV and FC1 linears
(2·h), q and the attention output (2·heads·head_dim), k and v (2·kv_heads·head_dim), FC1's gated
output (2·ffn) and FC2's input (ffn). Llama 3.1 8B: 4h + 2·a·d + 2·g·d + 3f = 69,632 elements =
139,264 B per token and layer in bf16, the same as Korthikanti et al.'s 34·h for GPT with flash
attention. Flash attention (TE, Llama) keeps no seq × seq scores; Gemma 2's NeMo spec uses an
unfused attention for its logit soft-capping, which keeps heads × seq scores per token: the
soft-capped scores (compute dtype), the softmax in fp32 and its compute-dtype copy.
With tensor parallelism (no sequence parallelism, as the train worker runs it) the norm and
linear inputs stay whole on every rank and the rest is split. Full recomputation keeps only each
layer's input (h per token and layer) plus one layer's activations while it is recomputed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from morphcpt.errors import MorphcptError
from morphcpt.estimates import LLAMA3_VOCAB, family_params  # synthetic families: the Llama-3 tokenizer

GIB = 2**30


@dataclass(frozen=True)
class ModelShape:
    hidden: int
    ffn: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    norms_per_layer: int = 2        # Llama: input + pre-MLP; Gemma 2 adds post-attention and post-MLP
    flash_attention: bool = True    # False: unfused attention keeps heads × seq scores per token
    final_logit_softcap: bool = False


# The NeMo config classes of the real families, with the shape that decides activations
# (tests/models/test_memory_estimate_nemo.py checks them against NeMo's own classes).
NEMO_SHAPES = {
    "Llama31Config8B": ModelShape(hidden=4096, ffn=14336, layers=32, heads=32, kv_heads=8, head_dim=128,
                                  vocab=128256),
    "Gemma2Config2B": ModelShape(hidden=2304, ffn=9216, layers=26, heads=8, kv_heads=4, head_dim=256,
                                 vocab=256000, norms_per_layer=4, flash_attention=False,
                                 final_logit_softcap=True),
}


def family_shape(family: dict[str, Any]) -> ModelShape:
    """The shape of a config family: its NeMo config class, or its synthetic dimensions."""
    if family.get("source") == "synthetic" or "nemo_config" not in family:
        syn = family.get("synthetic") or {}
        h, heads = syn.get("hidden_size", 64), syn.get("num_heads", 4)
        gemma = family["arch"] == "gemma"
        return ModelShape(hidden=h, ffn=syn.get("intermediate_size", 128), layers=syn.get("num_layers", 2),
                          heads=heads, kv_heads=syn.get("num_kv_heads", 2), head_dim=256 if gemma else h // heads,
                          vocab=LLAMA3_VOCAB, norms_per_layer=4 if gemma else 2, flash_attention=not gemma,
                          final_logit_softcap=gemma)
    if family["nemo_config"] not in NEMO_SHAPES:
        raise MorphcptError(f"no model shape for nemo_config {family['nemo_config']!r} in morphcpt.memory_estimate."
                            f"NEMO_SHAPES (known: {', '.join(NEMO_SHAPES)}); add its shape there for the GPU memory plan")
    return NEMO_SHAPES[family["nemo_config"]]


def activation_elements_per_token_layer(shape: ModelShape, tensor: int) -> float:
    """Elements autograd keeps per token and layer on one tensor rank (no recomputation)."""
    whole = shape.norms_per_layer * shape.hidden + 2 * shape.hidden  # norm and linear inputs: not split
    split = (2 * shape.heads * shape.head_dim + 2 * shape.kv_heads * shape.head_dim + 3 * shape.ffn)
    return whole + split / tensor


def attention_score_bytes_per_token_layer(shape: ModelShape, seq_length: int, tensor: int, act_bytes: int) -> float:
    """Unfused attention: soft-capped scores, fp32 softmax and its compute-dtype copy, per token."""
    if shape.flash_attention:
        return 0.0
    return shape.heads * seq_length * (2 * act_bytes + 4) / tensor


def estimate_gpu_memory(*, params: float, shape: ModelShape, tensor: int, pipeline: int, gpus: int,
                        nodes: int = 1, micro_batch_size: int, seq_length: int, precision: str, distributed_optimizer: bool,
                        grad_reduce_in_fp32: bool, recompute: str, reserve_gib: float) -> dict[str, Any]:
    """Bytes per GPU of one training job, by component (see the module docstring), in GiB.
    `gpus` per node; the data-parallel ranks span all `nodes` (docs/design.md §6)."""
    model_parallel = tensor * pipeline
    data_parallel = max(1, gpus * nodes // model_parallel)
    bf16 = str(precision).startswith("bf16")
    act_bytes = 2 if bf16 else 4
    param_share = params / model_parallel

    weights = param_share * act_bytes
    grad_bytes = 4 if (grad_reduce_in_fp32 or not bf16) else 2
    grads = param_share * grad_bytes
    optimizer_bytes = 8 + (4 if bf16 else 0) + (4 if bf16 and grad_bytes == 2 else 0)
    optimizer = param_share * optimizer_bytes / (data_parallel if distributed_optimizer else 1)

    tokens = micro_batch_size * seq_length
    per_layer = (activation_elements_per_token_layer(shape, tensor) * act_bytes
                 + attention_score_bytes_per_token_layer(shape, seq_length, tensor, act_bytes))
    if recompute == "full":
        kept_per_token = shape.layers * shape.hidden * act_bytes + per_layer
    elif recompute == "none":
        kept_per_token = shape.layers * per_layer
    else:
        raise ValueError(f"recompute {recompute!r}: expected none or full")
    activations = tokens * kept_per_token
    logit_copies = act_bytes * (2 if shape.final_logit_softcap else 1) + 4
    logits = tokens * (shape.vocab / tensor * logit_copies + 2 * shape.hidden * act_bytes)

    gib = {"weights": weights / GIB, "grads": grads / GIB, "optimizer": optimizer / GIB,
           "activations": activations / GIB, "logits": logits / GIB, "reserve": float(reserve_gib)}
    return {"tensor": tensor, "pipeline": pipeline, "data_parallel": data_parallel,
            "micro_batch_size": micro_batch_size, "seq_length": seq_length, "precision": str(precision),
            "distributed_optimizer": distributed_optimizer, "grad_reduce_in_fp32": grad_reduce_in_fp32,
            "recompute": recompute, "gib": {k: round(v, 3) for k, v in gib.items()},
            "total_gib": round(sum(gib.values()), 3)}


def family_gpu_memory(config: dict[str, Any], family_name: str) -> dict[str, Any]:
    """The estimate for one family of a validated config, with the configured GPU memory."""
    family = config["families"][family_name]
    par, training, plan = family["parallelism"], config["training"], config["plan"]
    estimate = estimate_gpu_memory(
        params=family_params(config, family_name), shape=family_shape(family), tensor=par["tensor"],
        pipeline=par["pipeline"], gpus=par["gpus"], nodes=par.get("nodes", 1), micro_batch_size=training["micro_batch_size"],
        seq_length=training["seq_length"], precision=training["precision"],
        distributed_optimizer=par["distributed_optimizer"], grad_reduce_in_fp32=par["grad_reduce_in_fp32"],
        recompute=par["recompute"], reserve_gib=plan["gpu_memory_reserve_gib"])
    estimate["shape"] = asdict(family_shape(family))
    estimate["gpus"] = par["gpus"]
    estimate["nodes"] = par.get("nodes", 1)
    estimate["gpu_memory_gib"] = plan["gpu_memory_gib"]
    # A CPU run (gpus 0) has no GPU memory to exceed.
    estimate["fits"] = par["gpus"] == 0 or estimate["total_gib"] <= plan["gpu_memory_gib"]
    return estimate


def over_memory_warning(family_name: str, estimate: dict[str, Any]) -> str | None:
    """One line when the estimate exceeds the configured GPU memory, naming the knobs."""
    if estimate["fits"]:
        return None
    return (f"families.{family_name}: estimated {estimate['total_gib']:.1f} GiB per GPU exceeds "
            f"plan.gpu_memory_gib ({estimate['gpu_memory_gib']}); lower training.micro_batch_size, set "
            f"parallelism.recompute: full, turn on parallelism.distributed_optimizer, or raise parallelism.tensor")
