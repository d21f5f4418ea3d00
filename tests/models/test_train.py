"""CPT with NeMo on CPU: starts from the imported weights (step-0 gate), learns, follows the cosine
with the configured max_steps, resumes after a kill, refuses wrong shards and stale checkpoints."""

from __future__ import annotations

import json
import math

import pytest

from model_fixtures import KILL_AT, TRAINING, run_training_subprocess, training_spec, write_fixture_shard
from morphcpt.errors import MorphcptError
from morphcpt.models.train import check_run_identity, check_shards, shard_prefixes


def _metrics(training_run) -> list[dict]:
    return json.loads((training_run["train_dir"] / "metrics.json").read_text())["steps"]


@pytest.mark.slow
def test_killed_run_resumes_from_its_checkpoint(training_run):
    first, second = training_run["first"], training_run["second"]
    assert not first["ok"] and "exited with code -9" in first["error"], first
    # Killed at the start of step 10, after the checkpoint holding 10 steps was saved.
    assert any("consumed_samples=40" in name for name in training_run["checkpoints_after_kill"])
    steps_before_kill = [json.loads(line)["step"] for line in training_run["metrics_after_kill"].splitlines()]
    assert steps_before_kill == list(range(KILL_AT))
    assert second["ok"], second
    runs = [json.loads(line) for line in (training_run["train_dir"] / "runs.jsonl").read_text().splitlines()]
    assert [r["start_step"] for r in runs] == [0, KILL_AT]
    metrics = _metrics(training_run)
    assert [m["step"] for m in metrics] == list(range(TRAINING["max_steps"]))
    assert (training_run["train_dir"] / "train.done").is_file()
    # Resumed from its own step-10 weights, not restarted from the imported ones (whose loss on
    # this data is ~step 0's): the loss carries on from where the killed run was.
    assert metrics[KILL_AT]["loss"] < metrics[0]["loss"] - 0.1


@pytest.mark.slow
def test_step0_gate_passes_from_imported_weights(training_run):
    gate = json.loads((training_run["train_dir"] / "step0_gate.json").read_text())
    assert gate["passed"] and gate["relative_diff"] < 1e-5  # fp32: the same model on the same tokens
    # The local spec honours reset_attention_mask: NeMo matches HF run document by document, and
    # not HF attending across the packed documents.
    assert gate["matched_attention"] == gate["expected_attention"] == "document"
    assert gate["relative_diff_causal"] > 100 * gate["relative_diff_document"]
    assert _metrics(training_run)[0]["loss"] == pytest.approx(gate["nemo_loss"])


@pytest.mark.slow
def test_loss_decreases_over_20_steps(training_run):
    losses = [m["loss"] for m in _metrics(training_run)]
    assert len(losses) == 20 and all(math.isfinite(x) for x in losses)
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < first - 0.1, losses


@pytest.mark.slow
def test_lr_follows_the_cosine_with_configured_max_steps(training_run):
    lr, min_lr, warmup, max_steps = TRAINING["lr"], TRAINING["min_lr"], TRAINING["warmup_steps"], TRAINING["max_steps"]

    def expected(step):  # NeMo's CosineAnnealing, written out: linear warmup, then cosine to min_lr at max_steps
        if step <= warmup:
            return lr * (step + 1) / (warmup + 1)
        return min_lr + (lr - min_lr) * 0.5 * (1 + math.cos(math.pi * (step - warmup) / (max_steps - warmup)))

    logged = [m["lr"] for m in _metrics(training_run)]
    for step, value in enumerate(logged):
        assert value == pytest.approx(expected(step), rel=1e-9), (step, value, expected(step))
    # The old pipeline's trap: a scheduler without max_steps sits at min_lr after a few steps.
    assert logged[12] > 3 * min_lr and min_lr < logged[-1] < 0.15 * lr


@pytest.mark.slow
def test_step0_gate_fails_for_a_randomly_initialised_model(tmp_path, imported_nemo, tiny_llama_hf, fixture_shards):
    train_dir = tmp_path / "random"
    spec = training_spec(imported_nemo, tiny_llama_hf, fixture_shards, train_dir, random_init=True,
                         training={"max_steps": 4, "checkpoint_every": 2, "warmup_steps": 1})
    result = run_training_subprocess(spec, tmp_path / "result.json")
    assert not result["ok"] and "step-0 gate failed" in result["error"], result
    gate = json.loads((train_dir / "step0_gate.json").read_text())
    assert not gate["passed"] and gate["relative_diff"] > 0.1  # ~ln(vocab) vs the confident base model
    assert not (train_dir / "train.done").exists() and not (train_dir / "metrics.json").exists()
    checkpoints = train_dir / "checkpoints"
    assert not checkpoints.exists() or not any(checkpoints.iterdir())  # stopped before any checkpoint


def test_shards_of_another_tokenizer_are_refused(tmp_path, tiny_llama_hf):
    from morphcpt.testing import tagalog_texts

    texts = tagalog_texts()[:3]
    good = write_fixture_shard(tmp_path / "good" / "chunk_000", tiny_llama_hf, texts)
    bad = write_fixture_shard(tmp_path / "bad" / "chunk_001", tiny_llama_hf, texts, fingerprint="0" * 64)
    assert check_shards([str(good)], tiny_llama_hf, 128_256)[0]["mode"] == "vanilla"
    with pytest.raises(MorphcptError, match="chunk_001.json: shard tokenizer fingerprint 000000000000 differs"):
        check_shards([str(good), str(bad)], tiny_llama_hf, 128_256)
    with pytest.raises(MorphcptError, match="documents end with id 128001, but the model's eos .* is 128009"):
        check_shards([str(good)], tiny_llama_hf, 128_256, eos_id=128009)
    assert check_shards([str(good)], tiny_llama_hf, 128_256, eos_id=128001)
    with pytest.raises(MorphcptError, match="vocab_size 128256 != the model's 1000"):
        check_shards([str(good)], tiny_llama_hf, 1000)
    other_mode = write_fixture_shard(tmp_path / "p" / "chunk_002", tiny_llama_hf, texts, mode="patok")
    with pytest.raises(MorphcptError, match="mixed modes"):
        check_shards([str(good), str(other_mode)], tiny_llama_hf, 128_256)
    assert shard_prefixes([str(good) + ".bin", str(good) + ".idx", str(good) + ".json"]) == [str(good)]


@pytest.mark.slow
def test_checkpoints_from_other_inputs_are_not_resumed(training_run):
    spec = dict(training_run["spec"])
    check_run_identity(spec)  # the same inputs: fine
    spec["training"] = {**spec["training"], "lr": 5e-4}
    with pytest.raises(MorphcptError, match="different inputs \\(changed: training\\)"):
        check_run_identity(spec)
