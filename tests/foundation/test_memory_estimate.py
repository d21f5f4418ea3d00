"""The GPU memory estimate of `morphcpt plan`, against figures worked out by hand."""

from __future__ import annotations

import copy

import pytest
import yaml

from morphcpt.config import validate_config
from morphcpt.memory_estimate import (NEMO_SHAPES, estimate_gpu_memory, family_gpu_memory, family_shape,
                                      over_memory_warning)

GIB = 2**30
LLAMA_8B = NEMO_SHAPES["Llama31Config8B"]
GEMMA2_2B = NEMO_SHAPES["Gemma2Config2B"]


def _estimate(**overrides):
    args = dict(params=8.03e9, shape=LLAMA_8B, tensor=1, pipeline=1, gpus=8, micro_batch_size=4, seq_length=512,
                precision="bf16-mixed", distributed_optimizer=True, grad_reduce_in_fp32=True, recompute="none",
                reserve_gib=4)
    args.update(overrides)
    return estimate_gpu_memory(**args)


def test_llama_8b_tp1_distributed_optimizer_by_hand():
    est = _estimate()
    gib = est["gib"]
    assert gib["weights"] == pytest.approx(8.03e9 * 2 / GIB, abs=1e-3)        # bf16 weights: 14.96
    assert gib["grads"] == pytest.approx(8.03e9 * 4 / GIB, abs=1e-3)          # fp32 grads: 29.91
    assert gib["optimizer"] == pytest.approx(8.03e9 * 12 / 8 / GIB, abs=1e-3)  # master + m + v over 8 ranks
    # per token and layer: norms 2·4096 + linear inputs 2·4096 + q, out 2·32·128 + k, v 2·8·128
    # + gate/up 2·14336 + down input 14336 = 69,632 bf16 values = 139,264 B; 32 layers, 4 × 512 tokens
    assert gib["activations"] == pytest.approx(139_264 * 32 * 2048 / GIB, abs=1e-3)  # 8.5 exactly
    # logits: 2048 tokens × (128,256 × (2 B bf16 + 4 B fp32 softmax) + final norm and head inputs 2·4096·2 B)
    assert gib["logits"] == pytest.approx(2048 * (128_256 * 6 + 16_384) / GIB, abs=1e-3)
    assert est["total_gib"] == pytest.approx(14.957 + 29.914 + 11.218 + 8.5 + 1.499 + 4, abs=5e-3)  # 70.09
    assert est["data_parallel"] == 8


def test_llama_8b_tp2_plain_optimizer_bf16_grads_by_hand():
    """The old default (TP=2, micro batch 1, no distributed optimizer): the unsharded optimizer
    (Megatron's 20 B/param for bf16 grads) dominates."""
    est = _estimate(tensor=2, micro_batch_size=1, distributed_optimizer=False, grad_reduce_in_fp32=False)
    gib = est["gib"]
    assert gib["weights"] == pytest.approx(8.03e9 * 2 / 2 / GIB, abs=1e-3)
    assert gib["grads"] == pytest.approx(8.03e9 * 2 / 2 / GIB, abs=1e-3)
    assert gib["optimizer"] == pytest.approx(8.03e9 * 16 / 2 / GIB, abs=1e-3)  # master, m, v, fp32 grad copy
    # without sequence parallelism the 4·h norm/linear inputs stay whole; the rest is split in two
    per_token_layer = (4 * 4096 + (2 * 32 * 128 + 2 * 8 * 128 + 3 * 14336) / 2) * 2
    assert per_token_layer == 86_016
    assert gib["activations"] == pytest.approx(86_016 * 32 * 512 / GIB, abs=1e-3)
    assert gib["logits"] == pytest.approx(512 * (128_256 / 2 * 6 + 16_384) / GIB, abs=1e-3)
    assert est["data_parallel"] == 4


def test_gemma2_unfused_attention_and_full_recompute_by_hand():
    est = _estimate(params=2.61e9, shape=GEMMA2_2B, recompute="full")
    # one layer: 4 norms + 2 linear inputs = 6·2304, q/out 2·8·256, k/v 2·4·256, 3·9216 → 47,616 bf16
    # values (95,232 B) + unfused scores 8 heads × 512 × (2 + 4 + 2 B) = 32,768 B → 128,000 B
    # full recompute: 26 layer inputs (2304 × 2 B) + that one layer being recomputed
    per_token = 26 * 2304 * 2 + 128_000
    assert est["gib"]["activations"] == pytest.approx(2048 * per_token / GIB, abs=1e-3)
    # logits in bf16, soft-capped copy in bf16, fp32 softmax: 8 B per vocab entry
    assert est["gib"]["logits"] == pytest.approx(2048 * (256_000 * 8 + 2 * 2304 * 2) / GIB, abs=1e-3)
    no_recompute = _estimate(params=2.61e9, shape=GEMMA2_2B)
    assert no_recompute["gib"]["activations"] == pytest.approx(2048 * 26 * 128_000 / GIB, abs=1e-3)


def test_fp32_training_counts_four_bytes_everywhere():
    est = _estimate(precision="32", gpus=1, distributed_optimizer=False)
    assert est["gib"]["weights"] == pytest.approx(8.03e9 * 4 / GIB, abs=1e-3)
    assert est["gib"]["grads"] == pytest.approx(8.03e9 * 4 / GIB, abs=1e-3)
    assert est["gib"]["optimizer"] == pytest.approx(8.03e9 * 8 / GIB, abs=1e-3)  # m, v only: no master copy
    assert est["gib"]["activations"] == pytest.approx(2 * _estimate()["gib"]["activations"], abs=2e-3)


def test_nemo_shapes_add_up_to_the_configured_parameter_counts(repo_root):
    """The shapes are the models the config names: their parameter counts match `params`."""
    config = yaml.safe_load((repo_root / "config" / "config.yaml").read_text())
    for family in config["families"].values():
        s = family_shape(family)
        attn = s.hidden * s.head_dim * (2 * s.heads + 2 * s.kv_heads)
        per_layer = attn + 3 * s.hidden * s.ffn + s.norms_per_layer * s.hidden
        tied = s.final_logit_softcap  # Gemma 2 ties input and output embeddings
        params = (1 if tied else 2) * s.vocab * s.hidden + s.layers * per_layer + s.hidden
        assert params == pytest.approx(family["params"], rel=0.005)


def test_real_config_fits_80_gib_and_a_larger_micro_batch_warns(repo_root):
    config = validate_config(yaml.safe_load((repo_root / "config" / "config.yaml").read_text()))
    for name in config["families"]:
        est = family_gpu_memory(config, name)
        assert est["fits"] and over_memory_warning(name, est) is None
        assert est["total_gib"] < 80
    bigger = copy.deepcopy(config)
    bigger["training"]["micro_batch_size"] = 8
    est = family_gpu_memory(bigger, "llama31_8b")
    assert est["total_gib"] > 80 and not est["fits"]
    warning = over_memory_warning("llama31_8b", est)
    assert "families.llama31_8b: estimated" in warning and "plan.gpu_memory_gib (80)" in warning
    # full recomputation brings it back under
    bigger["families"]["llama31_8b"]["parallelism"]["recompute"] = "full"
    assert family_gpu_memory(bigger, "llama31_8b")["fits"]


def test_cpu_family_never_warns(repo_root):
    config = validate_config(yaml.safe_load((repo_root / "config" / "demo.yaml").read_text()))
    config["plan"]["gpu_memory_gib"] = 0.001
    (name,) = config["families"]
    assert family_gpu_memory(config, name)["fits"]


def test_unknown_nemo_config_is_one_clear_error():
    from morphcpt.errors import MorphcptError

    with pytest.raises(MorphcptError, match="no model shape for nemo_config 'Llama31Config70B'.*add its shape"):
        family_shape({"arch": "llama", "source": "hf", "nemo_config": "Llama31Config70B"})


def test_two_nodes_double_the_data_parallel_size_and_halve_the_wall_time(repo_root):
    """parallelism.nodes (docs/design.md §6): 2 nodes of 8 GPUs are 16 data-parallel ranks, so the
    distributed optimizer's share per GPU halves (everything else per GPU stays), and the train
    job's wall time halves for the same GPU-hours."""
    from morphcpt.estimates import gpu_hours_per_train_job, train_wall_minutes

    config = validate_config(yaml.safe_load((repo_root / "config" / "config.yaml").read_text()))
    one = family_gpu_memory(config, "llama31_8b")
    two_nodes = copy.deepcopy(config)
    two_nodes["families"]["llama31_8b"]["parallelism"]["nodes"] = 2
    two = family_gpu_memory(two_nodes, "llama31_8b")
    assert (one["nodes"], one["data_parallel"], two["nodes"], two["data_parallel"]) == (1, 8, 2, 16)
    assert two["gib"]["optimizer"] == pytest.approx(one["gib"]["optimizer"] / 2, abs=1e-3)
    assert {k: v for k, v in two["gib"].items() if k != "optimizer"} == {
        k: v for k, v in one["gib"].items() if k != "optimizer"}
    assert gpu_hours_per_train_job(two_nodes, "llama31_8b") == gpu_hours_per_train_job(config, "llama31_8b")
    assert train_wall_minutes(two_nodes, "llama31_8b") == pytest.approx(train_wall_minutes(config, "llama31_8b") / 2)
