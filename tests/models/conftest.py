"""Session fixtures of the model tests: one tiny Llama, its NeMo import and one training run
(preempted with SIGTERM, killed during a checkpoint save, then rerun to completion) shared by all tests.

NeMo work runs in subprocesses: the CPU shims patch torch process-wide, and Megatron's parallel
state can be initialised only once per process. Each helper returns the subprocess's JSON result.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from model_fixtures import (interrupt_training, run_json, run_training_subprocess, training_spec,
                            write_fixture_shard)


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
    """The shared run (20 steps, a checkpoint every 5), interrupted twice the ways a cluster does:
    1. SIGTERM to the driver once step 6 is logged (Slurm's warning before the time limit): the
       worker finishes its step, saves a checkpoint and stops;
    2. rerun, and SIGKILL to every process while the step-10 checkpoint is being written (its
       `-unfinished` marker exists): a node lost mid-save;
    3. rerun to completion: the unfinished checkpoint is removed and training resumes from the
       previous complete one (the SIGTERM save)."""
    import signal

    work = tmp_path_factory.mktemp("train")
    train_dir = work / "run"
    ckpt_dir = train_dir / "checkpoints"
    spec = training_spec(imported_nemo, tiny_llama_hf, fixture_shards, train_dir)

    def logged_steps() -> int:
        path = train_dir / "metrics.jsonl"
        return len(path.read_text().splitlines()) if path.is_file() else 0

    first = interrupt_training(spec, work / "first.json", lambda: logged_steps() >= 7, signal.SIGTERM)
    after_sigterm = sorted(p.name for p in ckpt_dir.iterdir())
    unfinished_seen: list[str] = []

    def saving_step_10() -> bool:
        markers = [p.name for p in ckpt_dir.glob("*consumed_samples=40*-unfinished")]
        unfinished_seen.extend(markers)
        return bool(markers)

    second = interrupt_training(spec, work / "second.json", saving_step_10, signal.SIGKILL)
    after_kill = sorted(p.name for p in ckpt_dir.iterdir())
    third = run_training_subprocess(spec, work / "third.json")
    return {"spec": spec, "train_dir": train_dir, "first": first, "second": second, "third": third,
            "checkpoints_after_sigterm": after_sigterm, "checkpoints_after_kill": after_kill,
            "unfinished_seen": unfinished_seen}
