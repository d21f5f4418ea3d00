"""The family's throughput settings reach NeMo: config -> train spec -> MegatronStrategy's DDP config,
the optimizer config and the model config (real NeMo/Megatron objects; no GPU needed to build them)."""

from __future__ import annotations

import json

import pytest

from morphcpt.config import load_config
from morphcpt.models.parallelism import CPU_SETTINGS, apply_recompute, ddp_config, train_settings
from morphcpt.models.train import make_spec


@pytest.fixture(scope="module", autouse=True)
def nemo_shims():
    """NeMo's config classes refuse fused RoPE without TE: the CPU shims, as every entry point applies them."""
    from morphcpt.models.nemo_io import nemo_setup

    nemo_setup()


@pytest.fixture(scope="module")
def llama_family(repo_root):
    return load_config(repo_root / "config" / "config.yaml")["families"]["llama31_8b"]


def _spec(family, gpus, tmp_path):
    return make_spec(family=family, nemo_dir=tmp_path / "nemo", hf_dir=tmp_path / "hf", shard_files=["x.bin"],
                     train_dir=tmp_path / "train", checkpoint_dir=tmp_path / "train" / "checkpoints",
                     training=dict(seq_length=64, global_batch_size=4, micro_batch_size=1, max_steps=2, lr=1e-3,
                                   min_lr=1e-4, warmup_steps=0, checkpoint_every=1),
                     seed=1, gpus=gpus)


def test_the_real_config_reaches_megatron_strategy_on_gpus(llama_family, tmp_path):
    from nemo import lightning as nl

    spec = _spec(llama_family, 8, tmp_path)
    settings = json.loads(json.dumps(spec))["parallel_settings"]  # the spec travels as JSON to the worker
    assert settings == {"distributed_optimizer": True, "overlap_grad_reduce": True, "overlap_param_gather": True,
                        "grad_reduce_in_fp32": True, "recompute": "none"}
    assert spec["tensor"] == 1 and spec["pipeline"] == 1
    strategy = nl.MegatronStrategy(tensor_model_parallel_size=spec["tensor"], ddp=ddp_config(settings))
    ddp = strategy.ddp_config
    assert ddp.use_distributed_optimizer and ddp.overlap_grad_reduce and ddp.overlap_param_gather
    assert ddp.grad_reduce_in_fp32 and ddp.check_for_nan_in_grad


def test_a_changed_config_value_changes_the_strategy(llama_family, tmp_path):
    family = {**llama_family, "parallelism": {**llama_family["parallelism"], "overlap_grad_reduce": False,
                                              "grad_reduce_in_fp32": False, "recompute": "full"}}
    settings = _spec(family, 8, tmp_path)["parallel_settings"]
    ddp = ddp_config(settings)
    assert not ddp.overlap_grad_reduce and not ddp.grad_reduce_in_fp32 and ddp.overlap_param_gather

    from nemo.collections import llm

    config = llm.Llama31Config8B()
    assert config.recompute_granularity is None
    apply_recompute(config, settings)
    assert (config.recompute_granularity, config.recompute_method, config.recompute_num_layers) == ("full", "uniform", 1)


def test_cpu_runs_keep_every_setting_off(llama_family, tmp_path):
    assert _spec(llama_family, 0, tmp_path)["parallel_settings"] == CPU_SETTINGS
    ddp = ddp_config(CPU_SETTINGS)
    assert not (ddp.use_distributed_optimizer or ddp.overlap_grad_reduce or ddp.overlap_param_gather)


def test_param_gather_overlap_needs_the_distributed_optimizer():
    settings = train_settings({"distributed_optimizer": False, "overlap_param_gather": True}, gpus=8)
    assert settings["overlap_param_gather"] is False


def test_memory_estimate_shapes_match_nemo_configs():
    """morphcpt.memory_estimate's shapes are NeMo's own config classes."""
    from nemo.collections import llm

    from morphcpt.memory_estimate import NEMO_SHAPES

    for name, shape in NEMO_SHAPES.items():
        cfg = getattr(llm, name)()
        assert (cfg.hidden_size, cfg.ffn_hidden_size, cfg.num_layers, cfg.num_attention_heads,
                cfg.num_query_groups) == (shape.hidden, shape.ffn, shape.layers, shape.heads, shape.kv_heads), name
        assert (cfg.kv_channels or cfg.hidden_size // cfg.num_attention_heads) == shape.head_dim, name
        assert getattr(cfg, "vocab_size", None) in (None, shape.vocab), name
