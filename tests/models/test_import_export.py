"""HF -> NeMo import parity and NeMo -> HF export parity on the tiny fp32 Llama."""

from __future__ import annotations

import json

import pytest

from model_fixtures import TRAINING, run_json
from morphcpt.errors import MorphcptError
from morphcpt.models.nemo_io import compare_logits, parity_gate

pytestmark = pytest.mark.slow


def test_import_parity_gate_passes_fp32(tmp_path, imported_nemo, tiny_llama_hf):
    report_path = tmp_path / "nemo_parity.json"
    report = run_json(f"""
        from pathlib import Path
        from morphcpt.models.nemo_io import import_parity
        import_parity(Path({str(tiny_llama_hf)!r}), Path({str(imported_nemo)!r}), 1e-4, Path({str(report_path)!r}),
                      {{"arch": "llama"}})
    """, report_path)
    assert report["passed"]
    # fp32 on CPU: only summation-order rounding (fused QKV / gated MLP GEMMs) may differ; the
    # weights themselves are compared bit for bit in test_nemo_cpu.
    assert report["max_abs_diff"] <= 1e-4 and report["max_abs_diff"] <= 1e-6 * report["logit_scale"] * 10
    assert report["argmax_agreement"] == 1.0
    assert report["shape"][-1] == 128_256 and report["padded_vocab"] == 128_256
    assert (imported_nemo / "context" / "nemo_tokenizer" / "tokenizer.json").is_file()


def test_parity_gate_fails_loudly_and_writes_no_report(tmp_path):
    import torch

    hf = torch.zeros(1, 3, 5)
    nemo = torch.zeros(1, 3, 8)
    nemo[0, 1, 2] = 0.5
    report = compare_logits(hf, nemo, 1e-3, "unit")
    assert report["max_abs_diff"] == 0.5 and not report["passed"]
    with pytest.raises(MorphcptError, match="unit parity gate failed"):
        parity_gate(report, tmp_path / "r.json", "fix it")
    assert not (tmp_path / "r.json").exists()
    with pytest.raises(MorphcptError, match="shapes differ"):
        compare_logits(torch.zeros(1, 3, 9), nemo, 1e-3, "unit")


def test_round_trip_hf_nemo_hf_keeps_logits(tmp_path, imported_nemo, tiny_llama_hf):
    """DESIGN §7: HF -> NeMo -> HF gives the same logits (catches a naive QKV split on export)."""
    out = tmp_path / "roundtrip.json"
    result = run_json(f"""
        import json
        from pathlib import Path
        from morphcpt.models.nemo_io import (check_export_config, compare_logits, export_hf, hf_logits,
                                             parity_token_ids)
        hf, back = Path({str(tiny_llama_hf)!r}), Path({str(tmp_path / "hf_back")!r})
        export_hf(Path({str(imported_nemo)!r}), back)
        check_export_config(back, hf)
        ids = parity_token_ids(hf)
        report = compare_logits(hf_logits(hf, ids), hf_logits(back, ids), 1e-4, "round trip")
        Path({str(out)!r}).write_text(json.dumps(report))
    """, out)
    assert result["passed"] and result["max_abs_diff"] <= 1e-4, result


def test_export_of_trained_checkpoint_passes_parity(tmp_path, training_run, tiny_llama_hf):
    step = TRAINING["max_steps"]
    report_path = tmp_path / f"step_{step}.parity.json"
    out_dir = tmp_path / f"step_{step}"
    report = run_json(f"""
        from pathlib import Path
        from morphcpt.models.export import export_checkpoint
        export_checkpoint(Path({str(training_run["train_dir"] / "checkpoints")!r}), {step},
                          {TRAINING["global_batch_size"]}, Path({str(out_dir)!r}), Path({str(tiny_llama_hf)!r}), 1e-4,
                          Path({str(report_path)!r}))
    """, report_path)
    assert report["passed"] and report["max_abs_diff"] <= 1e-4
    assert report["config"]["vocab_size"] == 128_256 and report["config"]["tie_word_embeddings"] is False

    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(out_dir)
    assert len(AutoTokenizer.from_pretrained(out_dir)) == model.config.vocab_size == 128_256
    # The export holds the trained weights, not the base model's.
    base = load_file(tiny_llama_hf / "model.safetensors")
    exported = model.state_dict()
    assert not torch.equal(base["model.layers.0.mlp.down_proj.weight"], exported["model.layers.0.mlp.down_proj.weight"])


def test_export_refuses_a_step_without_checkpoint(training_run, tmp_path):
    from morphcpt.models.train import checkpoint_at_step

    with pytest.raises(MorphcptError, match="no checkpoint after step 7"):
        checkpoint_at_step(training_run["train_dir"] / "checkpoints", 7, TRAINING["global_batch_size"])
    assert checkpoint_at_step(training_run["train_dir"] / "checkpoints", 10, TRAINING["global_batch_size"]).is_dir()
    assert json.loads((training_run["train_dir"] / "metrics.json").read_text())["checkpoints"].keys() == {"10", "20"}
