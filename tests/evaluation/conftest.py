"""Session fixtures of the evaluation tests: source files of every schema, a tiny HF model."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark_fixtures import SOURCE_ROWS, write_jsonl


@pytest.fixture(scope="session")
def source_files(tmp_path_factory) -> dict[str, Path]:
    """One source-schema file per benchmark (a local PACUTE file = all PACUTE rows in one file)."""
    root = tmp_path_factory.mktemp("sources")
    return {b: write_jsonl(root / f"{b}.jsonl", make()) for b, make in SOURCE_ROWS.items()}


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, llama3_tokenizer_dir) -> Path:
    from morphcpt.models.synthetic import write_synthetic_model

    return write_synthetic_model(tmp_path_factory.mktemp("model") / "tiny_llama", arch="llama", seed=0,
                                 tokenizer_dir=llama3_tokenizer_dir)
