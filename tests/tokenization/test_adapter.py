"""TokenizerAdapter on both tokenizer styles: kinds, bytes, fingerprint, canonical encoding."""

from __future__ import annotations

import json
import shutil

import pytest

from morphcpt.errors import MorphcptError
from morphcpt.testing import sentencepiece_tokenizer_dir
from morphcpt.tokenization import BYTE_FALLBACK, NORMAL, SPECIAL, TokenizerAdapter


def test_llama3_facts(llama3_adapter):
    a = llama3_adapter
    assert a.style == "byte_level"
    assert a.vocab_size == 128_256
    assert (a.bos_id, a.eos_id) == (128_000, 128_001)
    assert a.kinds.count(SPECIAL) == 256 and a.kinds.count(BYTE_FALLBACK) == 0
    assert all(a.kinds[i] == SPECIAL for i in range(128_000, 128_256))
    # `Ġ` is a space in byte-level vocabularies, `Ċ` a newline; single bytes are all present
    ids = a.encode(" nag\n")
    assert a.decode_bytes(ids) == b" nag\n"
    assert {a.token_bytes[i] for i in range(256)} == {bytes([b]) for b in range(256)}


def test_sentencepiece_facts(sp_adapter, sp_tokenizer_dir):
    a = sp_adapter
    assert a.style == "sentencepiece"
    assert a.vocab_size == 800
    assert (a.bos_id, a.eos_id) == (2, 1)
    assert [a.kinds[i] for i in range(4)] == [SPECIAL] * 4
    byte_ids = [i for i, k in enumerate(a.kinds) if k == BYTE_FALLBACK]
    assert len(byte_ids) == 256
    assert sorted(a.token_bytes[i] for i in byte_ids) == [bytes([b]) for b in range(256)]
    assert any(a.token_bytes[i].startswith(b" ") for i, k in enumerate(a.kinds) if k == NORMAL)  # `▁` -> space


def test_sentencepiece_fixture_loads_with_transformers(sp_tokenizer_dir, sp_adapter):
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(str(sp_tokenizer_dir))
    assert hf.is_fast and len(hf) == 800
    assert (hf.pad_token_id, hf.eos_token_id, hf.bos_token_id, hf.unk_token_id) == (0, 1, 2, 3)
    assert TokenizerAdapter.from_hf(hf).fingerprint == sp_adapter.fingerprint
    text = "Kumain kami ng 🍚 sa Lungsod ng Quezon."
    assert hf.encode(text, add_special_tokens=False) == sp_adapter.encode(text)
    assert hf.encode(text)[0] == 2  # HF adds <bos> itself; the adapter never does


def test_sentencepiece_fixture_is_deterministic_and_cached(tmp_path, sp_tokenizer_dir):
    again = sentencepiece_tokenizer_dir(tmp_path / "again")
    assert (again / "tokenizer.json").read_bytes() == (sp_tokenizer_dir / "tokenizer.json").read_bytes()
    stamp = (again / "tokenizer.json").stat().st_mtime_ns
    assert sentencepiece_tokenizer_dir(tmp_path / "again") == again
    assert (again / "tokenizer.json").stat().st_mtime_ns == stamp  # reused, not retrained


def test_encode_is_lossless_without_specials(adapter):
    text = "Nagluto siya ng adobo!  Ang sarap. 日本語, Ελληνικά, 😀👍🏽 \t\n 12345"
    ids = adapter.encode(text)
    assert adapter.decode_bytes(ids) == text.encode("utf-8")
    assert adapter.bos_id not in ids and adapter.eos_id not in ids


def test_special_token_text_is_encoded_as_text(adapter):
    for special in ("<|begin_of_text|>", "<|end_of_text|>", "<bos>", "<eos>", "<pad>"):
        ids = adapter.encode(f"a {special} b")
        assert not any(adapter.kinds[i] == SPECIAL for i in ids)
        assert adapter.decode_bytes(ids) == f"a {special} b".encode()


def test_fingerprint_is_stable_and_sensitive(tmp_path, sp_tokenizer_dir, sp_adapter):
    copy = tmp_path / "copy"
    shutil.copytree(sp_tokenizer_dir, copy)
    assert TokenizerAdapter.from_dir(copy).fingerprint == sp_adapter.fingerprint
    spec = json.loads((copy / "tokenizer.json").read_text())
    vocab = spec["model"]["vocab"]
    first, second = (next(p for p, i in vocab.items() if i == idx) for idx in (700, 701))
    vocab[first], vocab[second] = 701, 700  # two ids swap their bytes
    (copy / "tokenizer.json").write_text(json.dumps(spec))
    assert TokenizerAdapter.from_dir(copy).fingerprint != sp_adapter.fingerprint


def test_missing_tokenizer_is_a_clear_error(tmp_path):
    with pytest.raises(MorphcptError, match="no tokenizer.json"):
        TokenizerAdapter.from_dir(tmp_path)


def test_dummy_prefix_tokenizer_is_refused(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers, decoders

    tok = Tokenizer(models.BPE(vocab={"▁": 0, "a": 1, "b": 2, "<s>": 3, "</s>": 4}, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="always")
    tok.decoder = decoders.Metaspace(prepend_scheme="always")
    tok.add_special_tokens(["<s>", "</s>"])
    tok.save(str(tmp_path / "tokenizer.json"))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"bos_token": "<s>", "eos_token": "</s>"}))
    with pytest.raises(MorphcptError, match="dummy prefix"):
        TokenizerAdapter.from_dir(tmp_path)


def test_non_special_added_token_keeps_bytes(sp_tokenizer_dir, processors):
    """Gemma-style added tokens that are not special (e.g. whitespace runs) are matched in normalized
    text (`▁` = space): their bytes must be the text they replace, and no mode may split them."""
    from tokenizers import AddedToken, Tokenizer

    backend = Tokenizer.from_file(str(sp_tokenizer_dir / "tokenizer.json"))
    backend.add_tokens([AddedToken("▁▁▁", normalized=True, special=False)])
    adapter = TokenizerAdapter(backend, "<bos>", "<eos>")
    ids = adapter.encode("Kumain   kami   ng   isda.")
    assert adapter.vocab_size - 1 in ids and adapter.kinds[adapter.vocab_size - 1] == SPECIAL
    assert adapter.decode_bytes(ids) == b"Kumain   kami   ng   isda."
    import numpy as np

    for mode in ("stochastok", "patok"):
        out, _ = processors(adapter, mode, {"expand_prop": 1.0})(ids, np.random.default_rng(0))
        assert out.count(adapter.vocab_size - 1) == ids.count(adapter.vocab_size - 1)
        assert adapter.decode_bytes(out) == adapter.decode_bytes(ids)


def test_sentencepiece_fixture_matches_sentencepiece_itself(sp_tokenizer_dir, sp_adapter, tagalog_docs):
    """The HF folder is built from the trained model's pieces: it must segment like SentencePiece."""
    import sentencepiece as spm

    sp = spm.SentencePieceProcessor(model_file=str(sp_tokenizer_dir / "tokenizer.model"))
    assert (sp.pad_id(), sp.eos_id(), sp.bos_id(), sp.unk_id()) == (0, 1, 2, 3)
    for text in tagalog_docs + ["Kumain ng 🍚 at 日本 sa 2026!"]:
        assert sp_adapter.encode(text) == sp.encode(text)
