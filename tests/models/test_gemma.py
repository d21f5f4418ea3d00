"""Gemma 2 on CPU: what runs without TransformerEngine (configs, the tiny model, tokenizer, shard
wiring) is tested here; NeMo conversion/training/export of Gemma 2 need TE and run only on GPU."""

from __future__ import annotations

import pytest

from model_fixtures import DEFAULT_PARITY, run_json, write_fixture_shard
from morphcpt.errors import MorphcptError
from morphcpt.models.nemo_io import check_arch_runnable, needs_transformer_engine
from morphcpt.models.train_inputs import check_shards


def _have_te() -> bool:
    try:
        import transformer_engine  # noqa: F401
    except ImportError:
        return False
    return True


GPU_ONLY = pytest.mark.skipif(not _have_te(), reason="GPU-only: NeMo's Gemma 2 layer spec needs TransformerEngine "
                              "(not installable on CPU); run on a GPU machine with TE")


@pytest.fixture(scope="module")
def sp_tokenizer_dir(tmp_path_factory):
    from morphcpt.testing import sentencepiece_tokenizer_dir

    return sentencepiece_tokenizer_dir(tmp_path_factory.mktemp("sp") / "tok")


@pytest.fixture(scope="module")
def tiny_gemma_hf(tmp_path_factory, sp_tokenizer_dir):
    from morphcpt.models.synthetic import write_synthetic_model

    return write_synthetic_model(tmp_path_factory.mktemp("gemma") / "tiny_gemma", arch="gemma", seed=0,
                                 tokenizer_dir=sp_tokenizer_dir)


def test_tiny_gemma_loads_with_sentencepiece_tokenizer(tiny_gemma_hf):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_gemma_hf)
    tok = AutoTokenizer.from_pretrained(tiny_gemma_hf)
    assert model.config.model_type == "gemma2" and model.config.tie_word_embeddings
    assert model.config.vocab_size == len(tok)
    assert (tok.bos_token_id, tok.eos_token_id) == (2, 1) == (model.config.bos_token_id, model.config.eos_token_id)
    assert model.config.head_dim == 256
    norms = [p for n, p in model.named_parameters() if n.endswith("norm.weight")]
    assert norms and all(not torch.allclose(p, torch.zeros_like(p)) for p in norms)  # Gemma scales by (1 + w)
    with torch.no_grad():
        logits = model(torch.tensor([[2, 10, 11, 12]])).logits
    assert logits.shape == (1, 4, len(tok)) and torch.isfinite(logits).all()


def test_nemo_configs_match_the_model_facts(tmp_path, tiny_gemma_hf):
    """docs/design.md §3's table against NeMo's config classes, and the Gemma 2 importer's config derived
    from the tiny model's config.json (no TE needed to build configs)."""
    out = tmp_path / "configs.json"
    res = run_json(f"""
        import json
        from pathlib import Path
        from morphcpt.models import nemo_cpu
        nemo_cpu.apply()  # building a NeMo config without TE needs the TE shims (rope fusion off)
        from nemo.collections import llm
        from nemo.collections.llm.gpt.model.gemma2 import HFGemmaImporter
        def facts(c):
            return [c.num_layers, c.hidden_size, c.num_attention_heads, c.num_query_groups,
                    c.kv_channels or c.hidden_size // c.num_attention_heads, c.ffn_hidden_size]
        imported = HFGemmaImporter(str(Path({str(tiny_gemma_hf)!r}))).config
        Path({str(out)!r}).write_text(json.dumps({{
            "llama": facts(llm.Llama31Config8B()), "gemma": facts(llm.Gemma2Config2B()),
            "gemma_vocab": llm.Gemma2Config2B().vocab_size, "gemma_tied": llm.Gemma2Config2B().share_embeddings_and_output_weights,
            "tiny_gemma": facts(imported) + [imported.vocab_size, imported.share_embeddings_and_output_weights],
            "llama_model": type(llm.LlamaModel(llm.Llama31Config8B())).__name__,
            "gemma_model": type(llm.Gemma2Model(llm.Gemma2Config2B())).__name__,
        }}))
    """, out)
    assert res["llama"] == [32, 4096, 32, 8, 128, 14336]
    assert res["gemma"] == [26, 2304, 8, 4, 256, 9216]
    assert res["gemma_vocab"] == 256_000 and res["gemma_tied"]
    from transformers import AutoConfig

    hf = AutoConfig.from_pretrained(tiny_gemma_hf)
    assert res["tiny_gemma"] == [hf.num_hidden_layers, hf.hidden_size, hf.num_attention_heads, hf.num_key_value_heads,
                                 hf.head_dim, hf.intermediate_size, hf.vocab_size, True]
    assert (res["llama_model"], res["gemma_model"]) == ("LlamaModel", "Gemma2Model")


def test_gemma_shards_are_wired_to_its_own_tokenizer(tmp_path, tiny_gemma_hf, llama3_tokenizer_dir):
    from morphcpt.testing import tagalog_texts
    from transformers import AutoTokenizer

    prefix = write_fixture_shard(tmp_path / "gemma2" / "vanilla" / "chunk_000", tiny_gemma_hf, tagalog_texts()[:5])
    vocab = len(AutoTokenizer.from_pretrained(tiny_gemma_hf))
    sidecar = check_shards([str(prefix)], tiny_gemma_hf, vocab)[0]
    assert (sidecar["bos_id"], sidecar["eos_id"]) == (2, 1)
    with pytest.raises(MorphcptError, match="fingerprint"):
        check_shards([str(prefix)], llama3_tokenizer_dir, vocab)


def _capping_gemma(tmp_path, tiny_gemma_hf):
    """The tiny Gemma with larger attention and embedding weights, so that its attention scores and
    final logits reach the soft-capping range (as Gemma 2 2B's do: logits of ~30)."""
    import shutil

    from safetensors.torch import load_file, save_file

    dest = tmp_path / "capping_gemma"
    shutil.copytree(tiny_gemma_hf, dest)
    w = load_file(dest / "model.safetensors")
    for name in list(w):
        if name.endswith(("q_proj.weight", "k_proj.weight")):
            w[name] = w[name] * 8
        elif name == "model.embed_tokens.weight":
            w[name] = w[name] * 40
    save_file(w, dest / "model.safetensors", metadata={"format": "pt"})
    return dest


def test_gemma_reference_keeps_soft_capping(tmp_path, tiny_gemma_hf):
    """Every HF reference (import/export parity, step-0 loss) loads through hf_reference with eager
    attention, the only transformers attention that applies Gemma 2's attention-logit soft-capping.
    Dropping the capping changes the reference logits by far more than the parity gate allows."""
    from morphcpt.models.hf_reference import load_hf_reference
    from morphcpt.models.nemo_io import compare_logits, hf_logits

    model = _capping_gemma(tmp_path, tiny_gemma_hf)
    assert load_hf_reference(model).config._attn_implementation == "eager"
    ids = [[2, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]]
    reference = hf_logits(model, ids)
    for dropped in ({"attn_logit_softcapping": None}, {"final_logit_softcapping": None}):
        report = compare_logits(reference, hf_logits(model, ids, **dropped), DEFAULT_PARITY, str(dropped))
        assert not report["passed"], report
    assert compare_logits(reference, hf_logits(model, ids), DEFAULT_PARITY, "same")["passed"]


def test_gemma_nemo_stages_say_they_need_te():
    assert needs_transformer_engine("gemma") and not needs_transformer_engine("llama")
    if _have_te():
        check_arch_runnable("gemma")
    else:
        with pytest.raises(MorphcptError, match="TransformerEngine"):
            check_arch_runnable("gemma")
    check_arch_runnable("llama")


@GPU_ONLY
@pytest.mark.slow
def test_gemma_import_parity_on_gpu(tmp_path, tiny_gemma_hf):
    report_path = tmp_path / "parity.json"
    report = run_json(f"""
        from pathlib import Path
        from morphcpt.models.nemo_io import import_nemo, import_parity
        nemo = import_nemo(Path({str(tiny_gemma_hf)!r}), Path({str(tmp_path / "nemo")!r}), {{"arch": "gemma"}})
        import_parity(Path({str(tiny_gemma_hf)!r}), nemo, {DEFAULT_PARITY!r}, Path({str(report_path)!r}),
                      {{"arch": "gemma"}})
    """, report_path)
    assert report["passed"]
