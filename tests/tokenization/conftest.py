"""Tokenizers for the tokenization tests: the real Llama-3 one and a SentencePiece BPE trained here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from morphcpt.testing import TAGALOG_CORPUS, sentencepiece_tokenizer_dir, tagalog_texts


@pytest.fixture(scope="session")
def tagalog_docs() -> list[str]:
    return tagalog_texts(TAGALOG_CORPUS)


@pytest.fixture(scope="session")
def split_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("split_tables")


@pytest.fixture(scope="session")
def llama3_adapter(llama3_tokenizer_dir):
    from morphcpt.tokenization import TokenizerAdapter

    return TokenizerAdapter.from_dir(llama3_tokenizer_dir)


@pytest.fixture(scope="session")
def sp_tokenizer_dir(tmp_path_factory) -> Path:
    return sentencepiece_tokenizer_dir(tmp_path_factory.mktemp("sp") / "tagalog-bpe-800")


@pytest.fixture(scope="session")
def sp_adapter(sp_tokenizer_dir):
    from morphcpt.tokenization import TokenizerAdapter

    return TokenizerAdapter.from_dir(sp_tokenizer_dir)


@pytest.fixture(scope="session", params=["llama3", "sentencepiece"])
def adapter(request):
    """Both tokenizer styles: byte-level BPE (Llama 3) and SentencePiece BPE with byte fallback."""
    return request.getfixturevalue("llama3_adapter" if request.param == "llama3" else "sp_adapter")


@pytest.fixture(scope="session")
def processors(split_cache):
    """make_processor memoised per (adapter, mode, params) for the session."""
    from morphcpt.tokenization import make_processor

    made = {}

    def get(adapter, mode, params=None):
        key = (adapter.fingerprint, mode, json.dumps(params or {}, sort_keys=True))
        if key not in made:
            made[key] = make_processor(adapter, mode, params or {}, cache_dir=split_cache)
        return made[key]

    return get
