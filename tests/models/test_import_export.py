"""HF -> NeMo import parity and NeMo -> HF export parity on the tiny fp32 Llama."""

from __future__ import annotations

import json
import os

import pytest

from model_fixtures import DEFAULT_PARITY, DEMO_PARITY, TRAINING, run_json
from morphcpt.errors import MorphcptError
from morphcpt.models.nemo_io import compare_logits, parity_gate
from morphcpt.testing import corrupted_hf_copy, swap_first_q_heads, transpose_first_up_proj

pytestmark = pytest.mark.slow


def test_import_parity_gate_passes_fp32(tmp_path, imported_nemo, tiny_llama_hf):
    report_path = tmp_path / "nemo_parity.json"
    report = run_json(f"""
        from pathlib import Path
        from morphcpt.models.nemo_io import import_parity
        import_parity(Path({str(tiny_llama_hf)!r}), Path({str(imported_nemo)!r}), {DEMO_PARITY!r},
                      Path({str(report_path)!r}), {{"arch": "llama"}})
    """, report_path)
    assert report["passed"] and report["failed_checks"] == []
    # fp32 on CPU: only summation-order rounding (fused QKV / gated MLP GEMMs) may differ; the
    # weights themselves are compared bit for bit in test_nemo_cpu.
    assert report["rel_diff"] <= DEMO_PARITY["max_rel_diff"] and report["top1_agreement"] == 1.0
    assert 0 <= report["kl"] <= DEMO_PARITY["max_kl"]
    assert report["compared_in"] == "float32" and report["thresholds"] == DEMO_PARITY
    assert report["software"]["nemo"] == "2.7.3" and report["software"]["megatron.core"] == "0.15.3"
    assert report["shape"][-1] == 128_256 and report["padded_vocab"] == 128_256
    assert (imported_nemo / "context" / "nemo_tokenizer" / "tokenizer.json").is_file()


def test_import_parity_passes_with_bf16_stored_weights(tmp_path, llama3_tokenizer_dir):
    """bf16 weights (as the real checkpoints are stored): both sides upcast to fp32 compute the same
    function, so the gate means the same as for fp32 weights, on CPU and on GPU."""
    from morphcpt.models.synthetic import write_synthetic_model

    hf = write_synthetic_model(tmp_path / "bf16_llama", arch="llama", seed=3, dtype="bfloat16",
                               tokenizer_dir=llama3_tokenizer_dir)
    report_path = tmp_path / "parity.json"
    report = run_json(f"""
        from pathlib import Path
        from morphcpt.models.nemo_io import import_nemo, import_parity
        nemo = import_nemo(Path({str(hf)!r}), Path({str(tmp_path / "nemo")!r}), {{"arch": "llama"}})
        import_parity(Path({str(hf)!r}), nemo, {DEMO_PARITY!r}, Path({str(report_path)!r}), {{"arch": "llama"}})
    """, report_path)
    assert report["passed"] and report["top1_agreement"] == 1.0, report


@pytest.mark.parametrize("thresholds", [DEMO_PARITY, DEFAULT_PARITY], ids=["demo", "default"])
def test_parity_gate_fails_for_conversion_bugs(tmp_path, imported_nemo, tiny_llama_hf, thresholds):
    """Negative controls: the NeMo import against HF models that differ from it the way a broken
    converter would make them differ. Each must fail the gate; the unmodified model must pass."""
    cases = {
        "unmodified": (tiny_llama_hf, {}),
        # tiny Llama: hidden 64, 4 heads -> head_dim 16
        "swapped_q_heads": (corrupted_hf_copy(tiny_llama_hf, tmp_path / "q", lambda w: swap_first_q_heads(w, 16)), {}),
        "transposed_mlp": (corrupted_hf_copy(tiny_llama_hf, tmp_path / "mlp", transpose_first_up_proj), {}),
        "wrong_rope_theta": (tiny_llama_hf, {"rope_theta": 10000.0}),
    }
    cases_path, out = tmp_path / "cases.json", tmp_path / "reports.json"
    cases_path.write_text(json.dumps({name: [str(d), o] for name, (d, o) in cases.items()}))
    reports = run_json(f"""
        import json
        from pathlib import Path
        from morphcpt.models.nemo_io import compare_logits, hf_logits, load_nemo, nemo_logits, parity_token_ids
        ids = parity_token_ids(Path({str(tiny_llama_hf)!r}))
        nemo = nemo_logits(load_nemo(Path({str(imported_nemo)!r})), ids)
        cases = json.loads(Path({str(cases_path)!r}).read_text())
        reports = {{name: compare_logits(hf_logits(Path(d), ids, **o), nemo, {thresholds!r}, name)
                    for name, (d, o) in cases.items()}}
        Path({str(out)!r}).write_text(json.dumps(reports))
    """, out)
    summary = {k: (r["rel_diff"], r["top1_agreement"], r["kl"], r["failed_checks"]) for k, r in reports.items()}
    print(summary)
    assert reports["unmodified"]["passed"], summary
    for bug in ("swapped_q_heads", "transposed_mlp", "wrong_rope_theta"):
        assert not reports[bug]["passed"], (bug, summary)


def test_parity_gate_fails_loudly_and_keeps_only_the_failed_report(tmp_path):
    import torch

    hf = torch.zeros(1, 3, 5)
    hf[..., 0] = 10.0
    nemo = torch.zeros(1, 3, 8)
    nemo[..., 0] = 10.0
    nemo[0, 1, 2] = 0.5
    report = compare_logits(hf, nemo, DEFAULT_PARITY, "unit")
    assert report["max_abs_diff"] == 0.5 and report["rel_diff"] == pytest.approx(0.05) and not report["passed"]
    assert report["failed_checks"] == ["max_rel_diff"] and report["top1_agreement"] == 1.0
    with pytest.raises(MorphcptError, match="unit parity gate failed on max_rel_diff:.*rerun the rule on purpose"):
        parity_gate(report, tmp_path / "r.json", "fix it")
    assert not (tmp_path / "r.json").exists()
    assert json.loads((tmp_path / "r.json.failed").read_text())["passed"] is False
    with pytest.raises(MorphcptError, match="shapes differ"):
        compare_logits(torch.zeros(1, 3, 9), nemo, DEFAULT_PARITY, "unit")
    with pytest.raises(MorphcptError, match="thresholds .*max_kl.* missing"):
        compare_logits(hf, nemo, {"max_rel_diff": 1.0, "min_top1_agreement": 0.0}, "unit")


def test_round_trip_hf_nemo_hf_keeps_logits(tmp_path, imported_nemo, tiny_llama_hf):
    """docs/design.md §7: HF -> NeMo -> HF gives the same logits (catches a naive QKV split on export)."""
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
        report = compare_logits(hf_logits(hf, ids), hf_logits(back, ids), {DEMO_PARITY!r}, "round trip")
        Path({str(out)!r}).write_text(json.dumps(report))
    """, out)
    assert result["passed"] and result["rel_diff"] <= DEMO_PARITY["max_rel_diff"], result
    # Every exported file follows the umask, the weights too (safetensors alone writes them 0600).
    umask = os.umask(0)
    os.umask(umask)
    modes = {p.name: p.stat().st_mode & 0o777 for p in (tmp_path / "hf_back").rglob("*") if p.is_file()}
    assert modes["model.safetensors"] == 0o666 & ~umask and set(modes.values()) == {0o666 & ~umask}, modes


def test_export_of_trained_checkpoint_passes_parity(tmp_path, training_run, tiny_llama_hf):
    # A checkpoint before the final one: written with optimizer state, which the driver removed
    # once a newer checkpoint was complete (models.checkpoints.prune_optimizer_state).
    step = TRAINING["max_steps"] - TRAINING["checkpoint_every"]
    report_path = tmp_path / f"step_{step}.parity.json"
    out_dir = tmp_path / f"step_{step}"
    report = run_json(f"""
        from pathlib import Path
        from morphcpt.models.export import export_checkpoint
        export_checkpoint(Path({str(training_run["train_dir"] / "checkpoints")!r}), {step},
                          {TRAINING["global_batch_size"]}, Path({str(out_dir)!r}), Path({str(tiny_llama_hf)!r}), {DEMO_PARITY!r},
                          Path({str(report_path)!r}))
    """, report_path)
    assert report["passed"] and report["rel_diff"] <= DEMO_PARITY["max_rel_diff"] and report["top1_agreement"] == 1.0
    assert report["config"]["vocab_size"] == 128_256 and report["config"]["tie_word_embeddings"] is False
    assert report["software"]["nemo"] == "2.7.3" and report["software"]["cuda_available"] is False

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
    from morphcpt.models.checkpoints import checkpoint_at_step

    with pytest.raises(MorphcptError, match="no checkpoint after step 7"):
        checkpoint_at_step(training_run["train_dir"] / "checkpoints", 7, TRAINING["global_batch_size"])
    assert checkpoint_at_step(training_run["train_dir"] / "checkpoints", 10, TRAINING["global_batch_size"]).is_dir()
    assert json.loads((training_run["train_dir"] / "metrics.json").read_text())["checkpoints"].keys() == {
        "5", "10", "15", "20"}
