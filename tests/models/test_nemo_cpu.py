"""The CPU shims: all installed without CUDA, none with CUDA, and the silent one is really needed."""

from __future__ import annotations

import json

import pytest

from model_fixtures import DEMO_PARITY, run_json
from morphcpt.models import nemo_cpu, nemo_stack


def test_every_shim_says_what_it_works_around():
    assert len(nemo_cpu.SHIMS) >= 10
    for name, why in nemo_cpu.SHIMS.items():
        assert callable(getattr(nemo_cpu, f"_shim_{name}")), name
        assert len(why) > 30, name


def test_shims_are_a_no_op_with_cuda_and_te(monkeypatch):
    monkeypatch.setattr(nemo_cpu, "cuda_available", lambda: True)
    monkeypatch.setattr(nemo_cpu, "te_available", lambda: True)
    monkeypatch.setattr(nemo_cpu, "APPLIED", {})
    assert nemo_cpu.apply() == {}


def test_gpu_without_te_is_an_error(monkeypatch):
    from morphcpt.errors import MorphcptError

    monkeypatch.setattr(nemo_cpu, "cuda_available", lambda: True)
    monkeypatch.setattr(nemo_cpu, "te_available", lambda: False)
    monkeypatch.setattr(nemo_cpu, "APPLIED", {})
    monkeypatch.delenv(nemo_stack.ALLOW_GPU_WITHOUT_TE_ENV, raising=False)
    for name in nemo_cpu.SHIMS:
        monkeypatch.setattr(nemo_cpu, f"_shim_{name}", lambda name=name: pytest.fail(f"{name} installed"))
    with pytest.raises(MorphcptError, match=f"CUDA is available but TransformerEngine.*{nemo_stack.ALLOW_GPU_WITHOUT_TE_ENV}=1"):
        nemo_cpu.apply()
    assert nemo_cpu.APPLIED == {}


def test_gpu_without_te_on_purpose_gets_only_the_te_shims(monkeypatch):
    installed = []
    monkeypatch.setattr(nemo_cpu, "cuda_available", lambda: True)
    monkeypatch.setattr(nemo_cpu, "te_available", lambda: False)
    monkeypatch.setattr(nemo_cpu, "APPLIED", {})
    monkeypatch.setenv(nemo_stack.ALLOW_GPU_WITHOUT_TE_ENV, "1")
    for name in nemo_cpu.SHIMS:
        monkeypatch.setattr(nemo_cpu, f"_shim_{name}", lambda name=name: installed.append(name))
    nemo_cpu.apply()
    assert sorted(installed) == ["cast_dtype", "norm_names", "transformer_config"]


def test_cpu_without_te_gets_every_shim(monkeypatch):
    installed = []
    monkeypatch.setattr(nemo_cpu, "cuda_available", lambda: False)
    monkeypatch.setattr(nemo_cpu, "te_available", lambda: False)
    monkeypatch.setattr(nemo_cpu, "APPLIED", {})
    for name in nemo_cpu.SHIMS:
        monkeypatch.setattr(nemo_cpu, f"_shim_{name}", lambda name=name: installed.append(name))
    nemo_cpu.apply()
    assert sorted(installed) == sorted(nemo_cpu.SHIMS)


def test_unknown_skip_name_is_refused():
    with pytest.raises(ValueError, match="unknown CPU shims"):
        nemo_cpu.apply(skip=("no_such_shim",))


def test_all_shims_installed_on_cpu(tmp_path):
    """In a fresh process: every shim is installed and each patched target really changed."""
    out = tmp_path / "applied.json"
    result = run_json(f"""
        import json, torch
        from pathlib import Path
        orig = {{"sync": torch.cuda.synchronize, "dev": torch.cuda.current_device}}
        from morphcpt.models import nemo_cpu, nemo_stack
        applied = nemo_cpu.apply()
        from megatron.core.transformer.transformer_config import TransformerConfig
        import nemo.lightning.io as nio, nemo.lightning.io.pl as npl
        from megatron.core.optimizer import clip_grads, optimizer
        from megatron.core.tensor_parallel import random as mrandom
        from nemo.lightning.pytorch.strategies.megatron_strategy import MegatronStrategy
        patched = {{
            "transformer_config": TransformerConfig.__post_init__.__module__ == "morphcpt.models.nemo_cpu",
            "sync_checkpoint_save": getattr(MegatronStrategy.__init__, "__wrapped__", None) is not None,
            "cuda_sync_and_streams": torch.cuda.synchronize is not orig["sync"],
            "current_device": torch.cuda.current_device() == "cpu",
            "norm_names": nio.apply_transforms.__module__ == "morphcpt.models.nemo_cpu",
            "fix_tensors_device": npl._fix_tensors_device.__module__ == "morphcpt.models.nemo_cpu",
            "rng_tracker": mrandom.CudaRNGStatesTracker.fork.__module__ == "morphcpt.models.nemo_cpu",
            "fp32_optimizer": optimizer.FP32Optimizer.__init__.__module__ == "morphcpt.models.nemo_cpu",
            "cuda_allocations": torch.zeros(1, device="cuda").device.type == "cpu",
            "grad_clipping": clip_grads.clip_grad_by_total_norm_fp32.__module__ == "morphcpt.models.nemo_cpu",
            "cast_dtype": True,
        }}
        cfg = TransformerConfig(num_layers=1, hidden_size=8, num_attention_heads=2, apply_rope_fusion=True,
                                persist_layer_norm=True, gradient_accumulation_fusion=True)
        patched["transformer_config"] &= not (cfg.apply_rope_fusion or cfg.persist_layer_norm
                                              or cfg.gradient_accumulation_fusion)
        Path({str(out)!r}).write_text(json.dumps({{"applied": applied, "patched": patched}}))
    """, out)
    assert set(result["applied"]) == set(nemo_cpu.SHIMS)
    assert result["patched"] == {name: True for name in nemo_cpu.SHIMS}


@pytest.mark.slow
def test_imported_norms_equal_hf_norms(tmp_path, imported_nemo, tiny_llama_hf):
    """The silent trap: without the norm-name shim the per-layer RMSNorms stay 1.0. Every imported
    norm (and the other un-fused weights) must equal the HF tensor bit for bit."""
    out = tmp_path / "weights.json"
    result = run_json(f"""
        import json, torch
        from pathlib import Path
        from safetensors.torch import load_file
        from morphcpt.models.nemo_io import load_nemo
        hf = load_file({str(tiny_llama_hf / "model.safetensors")!r})
        sd = {{k.split("module.", 1)[-1]: v for k, v in load_nemo(Path({str(imported_nemo)!r})).state_dict().items()}}
        pairs = {{"decoder.final_layernorm.weight": "model.norm.weight",
                  "embedding.word_embeddings.weight": "model.embed_tokens.weight",
                  "output_layer.weight": "lm_head.weight"}}
        for i in range(2):
            pairs[f"decoder.layers.{{i}}.input_layernorm.weight"] = f"model.layers.{{i}}.input_layernorm.weight"
            pairs[f"decoder.layers.{{i}}.pre_mlp_layernorm.weight"] = f"model.layers.{{i}}.post_attention_layernorm.weight"
            pairs[f"decoder.layers.{{i}}.self_attention.linear_proj.weight"] = f"model.layers.{{i}}.self_attn.o_proj.weight"
            pairs[f"decoder.layers.{{i}}.mlp.linear_fc2.weight"] = f"model.layers.{{i}}.mlp.down_proj.weight"
        res = {{}}
        for nk, hk in pairs.items():
            n = sd[nk][: hf[hk].shape[0]]
            res[nk] = {{"equal": bool(torch.equal(n.float(), hf[hk].float())), "all_one": bool((n == 1).all())}}
        Path({str(out)!r}).write_text(json.dumps(res))
    """, out)
    assert len(result) == 11
    bad = {k: v for k, v in result.items() if not v["equal"] or v["all_one"]}
    assert not bad, bad


@pytest.mark.slow
def test_without_norm_shim_the_import_gate_fails(tmp_path, tiny_llama_hf):
    """Proof that the norm shim matters and that the import gate catches its absence."""
    out = tmp_path / "result.json"
    result = run_json(f"""
        import json
        from pathlib import Path
        from morphcpt.errors import MorphcptError
        from morphcpt.models.nemo_io import import_nemo, import_parity, load_nemo
        nemo = Path({str(tmp_path / "nemo")!r})
        import_nemo(Path({str(tiny_llama_hf)!r}), nemo, {{"arch": "llama"}})
        norm = load_nemo(nemo).state_dict()
        norm = [v for k, v in norm.items() if k.endswith("decoder.layers.0.input_layernorm.weight")][0]
        try:
            import_parity(Path({str(tiny_llama_hf)!r}), nemo, {DEMO_PARITY!r}, Path({str(tmp_path / "parity.json")!r}))
            error = None
        except MorphcptError as exc:
            error = str(exc)
        Path({str(out)!r}).write_text(json.dumps({{"error": error, "norm_all_one": bool((norm == 1).all())}}))
    """, out, env_extra={"MORPHCPT_SKIP_CPU_SHIMS": "norm_names"})
    assert result["norm_all_one"], "without the shim the norms should stay at their init value 1.0"
    assert result["error"] and "parity gate failed" in result["error"]
    assert not (tmp_path / "parity.json").exists()
    assert json.loads((tmp_path / "parity.json.failed").read_text())["passed"] is False
