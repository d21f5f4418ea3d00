"""Session fixtures of the model tests: one tiny Llama, its NeMo import and one training run
(killed after its first checkpoint, then resumed) shared by all tests.

NeMo work runs in subprocesses: the CPU shims patch torch process-wide, and Megatron's parallel
state can be initialised only once per process. Each helper returns the subprocess's JSON result.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from model_fixtures import KILL_AT, run_json, run_training_subprocess, training_spec, write_fixture_shard


@pytest.fixture(scope="session")
def tiny_llama_hf(tmp_path_factory, llama3_tokenizer_dir) -> Path:
    """A tiny fp32 Llama (seeded random weights, randomised norms) with the real Llama-3 tokenizer."""
    from morphcpt.models.synthetic import write_synthetic_model

    return write_synthetic_model(tmp_path_factory.mktemp("hf") / "tiny_llama", arch="llama", seed=0,
                                 tokenizer_dir=llama3_tokenizer_dir)


@pytest.fixture(scope="session")
def imported_nemo(tmp_path_factory, tiny_llama_hf) -> Path:
    """The tiny Llama imported with llm.import_ckpt (CPU shims on)."""
    out = tmp_path_factory.mktemp("nemo") / "nemo"
    done = out.parent / "done.json"
    run_json(f"""
        import json
        from pathlib import Path
        from morphcpt.models.nemo_io import import_nemo
        import_nemo(Path({str(tiny_llama_hf)!r}), Path({str(out)!r}), {{"arch": "llama"}})
        Path({str(done)!r}).write_text(json.dumps({{"ok": True}}))
    """, done)
    return out


@pytest.fixture(scope="session")
def fixture_shards(tmp_path_factory, tiny_llama_hf) -> list[str]:
    """Two vanilla chunks of the project's Tagalog corpus, tokenized with the model's tokenizer."""
    from morphcpt.testing import tagalog_texts

    texts = tagalog_texts()
    root = tmp_path_factory.mktemp("shards") / "llama3" / "vanilla"
    half = len(texts) // 2
    prefixes = [write_fixture_shard(root / "chunk_000", tiny_llama_hf, texts[:half], chunk="000"),
                write_fixture_shard(root / "chunk_001", tiny_llama_hf, texts[half:], chunk="001")]
    return [str(p) + ext for p in prefixes for ext in (".bin", ".idx", ".json")]


@pytest.fixture(scope="session")
def training_run(tmp_path_factory, imported_nemo, tiny_llama_hf, fixture_shards) -> dict:
    """The shared run: killed (SIGKILL) before step 10, after the step-10 checkpoint; then rerun."""
    from morphcpt.models.train import KILL_ENV

    work = tmp_path_factory.mktemp("train")
    train_dir = work / "run"
    spec = training_spec(imported_nemo, tiny_llama_hf, fixture_shards, train_dir)
    first = run_training_subprocess(spec, work / "first.json", {KILL_ENV: str(KILL_AT)})
    checkpoints_after_kill = sorted(p.name for p in (train_dir / "checkpoints").iterdir())
    metrics_after_kill = (train_dir / "metrics.jsonl").read_text()
    second = run_training_subprocess(spec, work / "second.json")
    return {"spec": spec, "train_dir": train_dir, "first": first, "second": second,
            "checkpoints_after_kill": checkpoints_after_kill, "metrics_after_kill": metrics_after_kill}
