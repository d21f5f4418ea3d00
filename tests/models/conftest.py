"""Session fixtures of the model tests: one tiny Llama (and its NeMo import) shared by all tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_llama_hf(tmp_path_factory, llama3_tokenizer_dir) -> Path:
    """A tiny fp32 Llama (seeded random weights, randomised norms) with the real Llama-3 tokenizer."""
    from morphcpt.models.synthetic import write_synthetic_model

    return write_synthetic_model(tmp_path_factory.mktemp("hf") / "tiny_llama", arch="llama", seed=0,
                                 tokenizer_dir=llama3_tokenizer_dir)
