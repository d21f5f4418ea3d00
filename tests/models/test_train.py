"""CPT with NeMo on CPU: starts from the imported weights (step-0 gate, declared attention objective),
learns, follows the cosine with the configured max_steps, survives SIGTERM and a kill during a
checkpoint save, writes each kept checkpoint once, refuses wrong shards and stale checkpoints."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from model_fixtures import TRAINING, run_json, run_training_subprocess, training_spec, write_fixture_shard
from morphcpt.errors import MorphcptError
from morphcpt.models.checkpoints import has_optimizer_state, list_checkpoints, remove_unfinished, steps_done
from morphcpt.models.step0_gate import document_bounds, verdict
from morphcpt.models.train_inputs import check_run_identity, check_shards, sha256_text, shard_prefixes

GBS = TRAINING["global_batch_size"]


def _metrics(training_run) -> list[dict]:
    return json.loads((training_run["train_dir"] / "metrics.json").read_text())["steps"]


def _sigterm_step(training_run) -> int:
    """Steps in the checkpoint saved on SIGTERM (the one not on the checkpoint_every grid)."""
    steps = {steps_done(training_run["train_dir"] / "checkpoints" / n, GBS)
             for n in training_run["checkpoints_after_sigterm"]} - {None}
    (k,) = steps - {5, 10, 15, 20}
    return k


def _tree_bytes(path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_stops(training_run):
    first = training_run["first"]
    assert not first["ok"] and "interrupted by signal 15" in first["error"], first
    k = _sigterm_step(training_run)
    assert 7 <= k < 10, training_run["checkpoints_after_sigterm"]
    assert f"resumes from the checkpoint after step {k}" in first["error"]
    assert "preempted after step" in first["output"]
    # The save finished (no marker) and holds k steps; the regular step-5 checkpoint is there too.
    assert not any(n.endswith("-unfinished") for n in training_run["checkpoints_after_sigterm"])
    assert any("consumed_samples=20" in n for n in training_run["checkpoints_after_sigterm"])


@pytest.mark.slow
def test_kill_during_a_checkpoint_save_reruns_from_the_previous_complete_one(training_run):
    assert training_run["second"] == {"killed": True}
    assert training_run["unfinished_seen"], "the kill was meant to land during the step-10 save"
    assert any(n.endswith("-unfinished") for n in training_run["checkpoints_after_kill"])
    third = training_run["third"]
    assert third["ok"], third
    k = _sigterm_step(training_run)
    runs = [json.loads(line) for line in (training_run["train_dir"] / "runs.jsonl").read_text().splitlines()]
    assert [r["start_step"] for r in runs] == [0, k, k]  # the third run resumed from the SIGTERM save
    metrics = _metrics(training_run)
    assert [m["step"] for m in metrics] == list(range(TRAINING["max_steps"]))
    assert (training_run["train_dir"] / "train.done").is_file()
    # Resumed from its own step-k weights, not restarted from the imported ones (whose loss on
    # this data is ~step 0's): the loss carries on from where the interrupted run was.
    assert metrics[k]["loss"] < metrics[0]["loss"] - 0.1


@pytest.mark.slow
def test_each_kept_checkpoint_is_written_once(training_run):
    ckpt_dir = training_run["train_dir"] / "checkpoints"
    names = sorted(p.name for p in ckpt_dir.iterdir())
    # No -last copies, no unfinished leftovers, and the SIGTERM resume point is gone after the finish.
    assert not [n for n in names if "last" in n or n.endswith("-unfinished")], names
    found = list_checkpoints(ckpt_dir, GBS)
    assert sorted(found) == [5, 10, 15, 20] and len(names) == 4, names
    # After the run no checkpoint holds optimizer state: each was saved with it (a resume could
    # need it) and pruned once a newer one was complete; the final one never had it. All are
    # weights only (fp32: 4 B/param), the size the final one was written with.
    sizes = {s: _tree_bytes(p) for s, p in found.items()}
    assert not [s for s, p in found.items() if has_optimizer_state(p)]
    assert all(size == pytest.approx(sizes[20], rel=0.01) for size in sizes.values()), sizes
    summary = json.loads((training_run["train_dir"] / "metrics.json").read_text())
    assert summary["checkpoints"].keys() == {"5", "10", "15", "20"}
    # The inputs it was made from: each shard's sidecar fingerprint (a rerun after a preprocessor
    # edit records the new ones), the recipe and the base model.
    assert summary["run_identity"]["shards"].keys() == {"chunk_000", "chunk_001"}
    assert summary["software"]["nemo"] == "2.7.3" and summary["software"]["device"] == "cpu"


@pytest.mark.slow
def test_checkpoint_bytes_on_disk_match_the_plan(training_run, tiny_llama_hf):
    """`morphcpt plan`'s train bytes (estimates.output_bytes) for this run's config, against the
    bytes the finished run left in its checkpoint folder: within 10%."""
    from morphcpt.estimates import output_bytes

    hf_config = json.loads((tiny_llama_hf / "config.json").read_text())
    config = {"training": TRAINING, "plan": {}, "corpus": {},
              "families": {"tiny": {"arch": "llama", "synthetic": {
                  "hidden_size": hf_config["hidden_size"], "intermediate_size": hf_config["intermediate_size"],
                  "num_layers": hf_config["num_hidden_layers"], "num_heads": hf_config["num_attention_heads"],
                  "num_kv_heads": hf_config["num_key_value_heads"]}}}}
    planned = output_bytes(config, "train", {"family": "tiny"})
    on_disk = _tree_bytes(training_run["train_dir"] / "checkpoints")
    print(f"checkpoint bytes: planned {planned:.4g}, on disk {on_disk:.4g}, ratio {on_disk / planned:.3f}")
    assert on_disk == pytest.approx(planned, rel=0.10)


@pytest.mark.slow
def test_step0_gate_passes_for_the_declared_objective(training_run):
    gate = json.loads((training_run["train_dir"] / "step0_gate.json").read_text())
    assert gate["passed"] and gate["relative_diff"] < 1e-5  # fp32: the same model on the same tokens
    assert (gate["objective"], gate["control"]) == ("causal", "document")
    assert _metrics(training_run)[0]["loss"] == pytest.approx(gate["nemo_loss"])
    # The gate batch (many short documents per sequence) separates the objectives by more than
    # 5 tolerances, and NeMo's forward on it matches the declared objective, not the control.
    g = gate["gate_batch"]
    print(f"step-0 gate: first batch {gate['relative_diff']:.2e}; gate batch {g['documents']} documents, NeMo vs "
          f"causal {g['relative_diff']:.2e}, vs document {g['relative_diff_control']:.2e}, objectives "
          f"{gate['control_gap']:.2e} apart (tolerance {gate['tolerance']:g})")
    assert gate["separable"] and gate["control_gap"] >= 5 * gate["tolerance"]
    assert g["relative_diff"] < 1e-5 and g["relative_diff_control"] > 100 * max(g["relative_diff"], 1e-9)
    assert g["documents"] >= 4 * g["sequences"]


# HF losses of the two batches: the first batch barely separates the objectives (as the demo's
# own batches), the gate batch does (0.4%).
REF = {"objective": "causal", "control": "document", "loss_causal": 5.000, "loss_document": 5.0002, "tokens": 100,
       "gate_batch": {"loss_causal": 6.00, "loss_document": 6.024, "tokens": 80, "sequences": 4, "documents": 40,
                      "doc_tokens": 8}}


def test_gate_passes_on_a_separable_gate_batch_matching_the_declared_objective():
    passed = verdict(5.00001, REF, 1e-4, 6.0001)
    assert passed["passed"] and passed["reason"] is None and passed["separable"]
    assert passed["control_gap"] == pytest.approx(0.004)
    assert passed["gate_batch"]["relative_diff"] == pytest.approx(0.0001 / 6)
    assert passed["relative_diff_control"] == pytest.approx(0.00019 / 5.0002)


def test_gate_fails_when_the_gate_batch_loss_matches_the_other_objective_better():
    # Within the tolerance of neither would pass; with a 1% tolerance the batch is not separable.
    failed = verdict(5.00001, REF, 1e-4, 6.0239)
    assert not failed["passed"] and "better than under the declared causal attention" in failed["reason"]
    wide = {**REF, "gate_batch": {**REF["gate_batch"], "loss_document": 6.6}}  # 10% apart
    failed = verdict(5.00001, wide, 0.01, 6.59)
    assert not failed["passed"] and "another objective than declared" in failed["reason"]
    failed = verdict(5.00001, wide, 0.01, 6.1)  # neither: outside the tolerance of the declared one
    assert not failed["passed"] and "on the gate batch differs from the HF loss" in failed["reason"]
    failed = verdict(5.2, wide, 0.01, 6.0)  # the first batch: not the imported weights
    assert not failed["passed"] and "did not start from the imported weights" in failed["reason"]
    assert not verdict(None, wide, 0.01, 6.0)["passed"] and not verdict(5.0, wide, 0.01, None)["passed"]


def test_gate_fails_as_inconclusive_when_the_gate_batch_cannot_separate_the_objectives(tmp_path):
    from morphcpt.models.step0_gate import refuse_inconclusive

    # 0.4% apart: separable at 1e-4 (5 x 1e-4 = 0.05%), not at 1% (5% needed), whatever NeMo computes.
    failed = verdict(5.0, REF, 0.01, 6.0)
    assert not failed["passed"] and not failed["separable"] and failed["reason"].startswith("inconclusive")
    for number in ("6.000000", "6.024000", "4.00e-03", "5.00e-02", "40 documents"):
        assert number in failed["reason"], (number, failed["reason"])
    assert "GATE_DOC_TOKENS" in failed["reason"] and "step0_loss_tolerance" in failed["reason"]
    # The driver refuses before launching any worker, and the failed report is kept.
    gate_path = tmp_path / "step0_gate.json"
    refuse_inconclusive(REF, 1e-4, gate_path)  # separable: nothing happens
    assert not gate_path.exists()
    with pytest.raises(MorphcptError, match=r"step-0 gate failed: inconclusive: .* differ by 4.00e-03"):
        refuse_inconclusive(REF, 0.01, gate_path)
    assert json.loads(gate_path.read_text())["reason"].startswith("inconclusive")


def test_document_bounds_split_after_each_eod():
    assert document_bounds(10, [3, 6]) == [0, 4, 7, 10]
    assert document_bounds(10, [9]) == [0, 10]
    assert document_bounds(5, []) == [0, 5]


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
def test_step0_gate_fails_for_other_weights_and_stays_failed(tmp_path, tiny_llama_hf, fixture_shards,
                                                             llama3_tokenizer_dir):
    """Negative control: NeMo weights that are not the base model's (another seed, and an output
    layer at a fresh initialisation's scale: what training from un-restored weights sees), gated
    against the base model's HF loss. The gate fails before any checkpoint, its report is kept,
    and a rerun stops at once with how to rerun on purpose."""
    from safetensors.torch import load_file, save_file

    from morphcpt.models.synthetic import write_synthetic_model

    other_hf = write_synthetic_model(tmp_path / "other_hf", arch="llama", seed=11, tokenizer_dir=llama3_tokenizer_dir)
    weights = load_file(other_hf / "model.safetensors")
    weights["lm_head.weight"] = weights["lm_head.weight"] * 0.02  # logits near 0: loss ~ ln(vocab)
    save_file(weights, other_hf / "model.safetensors", metadata={"format": "pt"})
    other_nemo = tmp_path / "other_nemo"
    done = tmp_path / "import.json"
    run_json(f"""
        import json
        from pathlib import Path
        from morphcpt.models.nemo_io import import_nemo
        import_nemo(Path({str(other_hf)!r}), Path({str(other_nemo)!r}), {{"arch": "llama"}})
        Path({str(done)!r}).write_text(json.dumps({{"ok": True}}))
    """, done)
    train_dir = tmp_path / "run"
    spec = training_spec(other_nemo, tiny_llama_hf, fixture_shards, train_dir,
                         training={"max_steps": 4, "checkpoint_every": 2, "warmup_steps": 1})
    result = run_training_subprocess(spec, tmp_path / "result.json")
    assert not result["ok"] and "step-0 gate failed" in result["error"], result
    gate_path = train_dir / "step0_gate.json"
    gate = json.loads(gate_path.read_text())
    assert not gate["passed"] and gate["relative_diff"] > 0.1, gate  # ~ln(vocab) vs the confident base model
    assert "did not start from the imported weights" in gate["reason"]
    assert not (train_dir / "train.done").exists() and not (train_dir / "metrics.json").exists()
    checkpoints = train_dir / "checkpoints"
    assert not checkpoints.exists() or not any(checkpoints.iterdir())  # stopped before any checkpoint
    # A rerun (a Snakemake retry) does not run the gate again: the report stays, the message says
    # how to rerun on purpose.
    again = run_training_subprocess(spec, tmp_path / "again.json")
    assert not again["ok"] and "is not retried" in again["error"] and f"delete {gate_path}" in again["error"]
    assert json.loads(gate_path.read_text()) == gate
    assert len((train_dir / "runs.jsonl").read_text().splitlines()) == 1  # no second worker was launched


def test_unfinished_checkpoints_are_removed(tmp_path):
    d = tmp_path / "checkpoints"
    done = d / "step=4-consumed_samples=20.0"
    half = d / "step=9-consumed_samples=40.0"
    for p in (done, half):
        (p / "weights").mkdir(parents=True)
    (d / (half.name + "-unfinished")).write_text("")
    assert sorted(list_checkpoints(d, 4)) == [5]
    assert remove_unfinished(d) == [half.name]
    assert sorted(p.name for p in d.iterdir()) == [done.name]


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


def _fake_run(tmp_path, **overrides) -> dict:
    """A train folder as a run leaves it (identity, checkpoints, per-run files), without NeMo."""
    hf = tmp_path / "hf"
    hf.mkdir(exist_ok=True)
    (hf / "manifest.json").write_text(json.dumps({"files": {"model.safetensors": "ab" * 32}}))
    shard = tmp_path / "shards" / "chunk_000"
    shard.parent.mkdir(exist_ok=True)
    if not Path(str(shard) + ".json").exists():
        Path(str(shard) + ".json").write_text(json.dumps({"mode": "patok", "code_version": "1"}))
    return training_spec(tmp_path / "nemo", hf, [str(shard) + ".json"], tmp_path / "run", **overrides)


def test_a_run_of_other_inputs_is_removed_and_starts_over(tmp_path, capsys):
    spec = _fake_run(tmp_path)
    train_dir, ckpt = Path(spec["train_dir"]), Path(spec["checkpoint_dir"])
    assert check_run_identity(spec) == []  # a new run: identity recorded
    for name in ("step=4-consumed_samples=20.0", "step=9-consumed_samples=40.0"):
        (ckpt / name / "weights").mkdir(parents=True)
    for name in ("metrics.jsonl", "runs.jsonl", "step0_gate.json", "step0_reference.json"):
        (train_dir / name).write_text("{}\n")
    (train_dir / "index_cache").mkdir()
    assert check_run_identity(spec) == []  # the same inputs: resumed, nothing touched
    assert sorted(list_checkpoints(ckpt, 4)) == [5, 10]
    # The Patok shards were remade (another sidecar): the stale run goes, with what and why logged.
    shard_json = Path(spec["shard_prefixes"][0] + ".json")
    shard_json.write_text(json.dumps({"mode": "patok", "code_version": "2"}))
    removed = check_run_identity(spec)
    assert str(ckpt) in removed and str(train_dir / "index_cache") in removed and len(removed) == 6, removed
    assert sorted(p.name for p in train_dir.iterdir()) == ["run_identity.json"]
    assert "different inputs (changed: shards); removed it to start over" in capsys.readouterr().out
    assert json.loads((train_dir / "run_identity.json").read_text())["shards"]["chunk_000"] == \
        sha256_text(shard_json.read_text())
    # A config value of the identity, or the optimizer-state layout, counts the same way.
    (ckpt / "step=4-consumed_samples=20.0").mkdir(parents=True)
    lr = _fake_run(tmp_path, training={"lr": 5e-4})
    assert check_run_identity(lr) == [str(ckpt)]
    (ckpt / "step=4-consumed_samples=20.0").mkdir(parents=True)
    sharded = {**lr, "parallel_settings": {**lr["parallel_settings"], "distributed_optimizer": True}}
    assert check_run_identity(sharded) == [str(ckpt)]
    # Checkpoints nobody recorded an identity for are not deleted: the user decides.
    (ckpt / "step=4-consumed_samples=20.0").mkdir(parents=True)
    (train_dir / "run_identity.json").unlink()
    with pytest.raises(MorphcptError, match="checkpoints of unknown origin"):
        check_run_identity(spec)
    assert ckpt.is_dir()


def _hold_in_subprocess(path: Path):
    """A live process holding the lock file `path` (as a trainer would), once it says so."""
    import subprocess
    import sys

    code = ("import sys, time\nfrom pathlib import Path\nfrom morphcpt.models.run_lock import hold\n"
            "with hold(Path(sys.argv[1])):\n    print('held', flush=True)\n    time.sleep(600)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_one_trainer_per_run_folder(tmp_path, capsys):
    import socket

    from morphcpt.models.run_lock import DRIVER_LOCK, WORKER_LOCK, driver_lock

    holder = _hold_in_subprocess(tmp_path / DRIVER_LOCK)
    try:
        with pytest.raises(MorphcptError, match=f"another training driver is running in {tmp_path} "
                                                f"\\(host {socket.gethostname()}, PID {holder.pid}, since "):
            with driver_lock(tmp_path):
                pass
    finally:
        holder.kill()  # kill -9: the lock file still names it, the kernel dropped the lock
        holder.wait()
    with driver_lock(tmp_path):  # a lock left by a dead process is taken over, and whose it was is logged
        assert f"took over {tmp_path / DRIVER_LOCK}, left by a training driver that is no longer running " \
               f"(host {socket.gethostname()}, PID {holder.pid}" in capsys.readouterr().out
    assert (tmp_path / DRIVER_LOCK).read_text() == ""  # a clean exit leaves no holder behind
    # A worker orphaned by a killed driver still trains in the folder: a new driver stops at once.
    orphan = _hold_in_subprocess(tmp_path / WORKER_LOCK)
    try:
        with pytest.raises(MorphcptError, match=f"another training worker .*PID {orphan.pid}"):
            with driver_lock(tmp_path):
                pass
        assert (tmp_path / DRIVER_LOCK).read_text() == ""  # and released its own lock
    finally:
        orphan.kill()
        orphan.wait()
    with driver_lock(tmp_path):
        pass


@pytest.mark.slow
def test_a_resume_reproduces_the_uninterrupted_run(tmp_path, imported_nemo, tiny_llama_hf):
    """Two small chunks (the data wraps every few steps): the uninterrupted run against a run
    stopped by SIGTERM before the first wrap and resumed, then killed (-9, every process) after it
    and resumed from its last complete checkpoint: the same loss at every step, exactly."""
    import signal

    from morphcpt.testing import tagalog_texts

    from model_fixtures import interrupt_training

    texts = tagalog_texts()[:10]
    root = tmp_path / "shards" / "vanilla"
    prefixes = [write_fixture_shard(root / "chunk_000", tiny_llama_hf, texts[:5], chunk="000"),
                write_fixture_shard(root / "chunk_001", tiny_llama_hf, texts[5:], chunk="001")]
    shards = [str(p) + ext for p in prefixes for ext in (".bin", ".idx", ".json")]
    training = {"max_steps": 8, "checkpoint_every": 2, "warmup_steps": 1}
    tokens = sum(json.loads(Path(str(p) + ".json").read_text())["tokens_out"] for p in prefixes)
    steps_per_epoch = tokens / (TRAINING["seq_length"] * GBS)
    assert 2 < steps_per_epoch < 4, steps_per_epoch  # a wrap between the SIGTERM and the kill

    def run(name):
        return training_spec(imported_nemo, tiny_llama_hf, shards, tmp_path / name, training=training)

    def logged(spec) -> int:
        path = Path(spec["train_dir"]) / "metrics.jsonl"
        return len(path.read_text().splitlines()) if path.is_file() else 0

    whole = run("whole")
    assert run_training_subprocess(whole, tmp_path / "whole.json")["ok"]
    resumed = run("resumed")
    first = interrupt_training(resumed, tmp_path / "r1.json", lambda: logged(resumed) >= 1, signal.SIGTERM)
    assert not first["ok"] and "interrupted by signal 15" in first["error"], first
    assert interrupt_training(resumed, tmp_path / "r2.json", lambda: logged(resumed) >= 6, signal.SIGKILL)["killed"]
    assert run_training_subprocess(resumed, tmp_path / "r3.json")["ok"]

    def losses(spec):
        return [m["loss"] for m in json.loads((Path(spec["train_dir"]) / "metrics.json").read_text())["steps"]]

    def starts(spec):
        return [json.loads(line)["start_step"] for line in (Path(spec["train_dir"]) / "runs.jsonl").read_text().splitlines()]

    assert starts(whole) == [0]
    _, sigterm_start, kill_start = starts(resumed)
    print(f"steps per epoch {steps_per_epoch:.2f}; resumed at steps {sigterm_start} (SIGTERM) and {kill_start} (kill -9)")
    assert 0 < sigterm_start < steps_per_epoch < kill_start < training["max_steps"]
    assert losses(resumed) == losses(whole), (losses(whole), losses(resumed))


@pytest.mark.slow
def test_the_training_data_holds_a_sample_for_every_step(tmp_path, imported_nemo, tiny_llama_hf, fixture_shards):
    """The cause of resumes that diverged after a data wrap: given several chunks and no weights,
    megatron-core builds one epoch of each, and Lightning's next epoch restarts the sampler at the
    consumed_samples the job started with. Weighted chunks give one loader epoch for max_steps."""
    out = tmp_path / "lengths.json"
    spec = training_spec(imported_nemo, tiny_llama_hf, fixture_shards, tmp_path / "run",
                         training={"max_steps": 200, "checkpoint_every": 100})
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(spec))
    result = run_json(f"""
        import json, socket
        from pathlib import Path
        import torch.distributed as dist
        from morphcpt.errors import MorphcptError
        from morphcpt.models import packed_data
        from morphcpt.models.nemo_io import nemo_setup
        nemo_setup()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{{port}}", rank=0, world_size=1)
        spec = json.loads(Path({str(spec_path)!r}).read_text())
        tokenizer = packed_data.load_tokenizer(Path(spec["nemo_dir"]))
        weighted = len(packed_data.build_data_for_reference(spec, tokenizer)._train_ds)
        packed_data.blend = lambda prefixes: list(prefixes)  # megatron-core's unweighted blend
        try:
            packed_data.build_data_for_reference(spec, tokenizer)
            unweighted = None
        except MorphcptError as exc:
            unweighted = str(exc)
        Path({str(out)!r}).write_text(json.dumps({{"weighted": weighted, "unweighted": unweighted}}))
    """, out)
    need = 200 * GBS
    assert result["weighted"] >= need, result
    assert result["unweighted"] and f"fewer than max_steps x global_batch_size = {need}" in result["unweighted"], result


def test_the_step0_reference_model_is_released_before_training(tiny_llama_hf, monkeypatch):
    """The HF model of the step-0 reference (8B in fp32: 32 GB) is gone when the losses are
    returned, before the driver launches the workers (on GPUs it also runs in a child process)."""
    import gc
    import weakref

    from morphcpt.models import hf_reference
    from morphcpt.models.step0_gate import hf_reference_losses

    models = []
    load = hf_reference.load_hf_reference
    monkeypatch.setattr(hf_reference, "load_hf_reference", lambda d: models.append(weakref.ref(m := load(d))) or m)
    tokens = [128000, 9906, 1917, 13, 128001, 128000, 40, 1097, 1618, 128001]
    sample = {"tokens": tokens, "labels": tokens[1:] + [128001], "loss_mask": [1.0] * len(tokens)}
    losses = hf_reference_losses(tiny_llama_hf, {"first": [sample], "gate": [sample, sample]}, eod_id=128001)
    gc.collect()
    assert len(models) == 1 and models[0]() is None  # loaded once, and no reference to the model is left
    first, gate = losses["first"], losses["gate"]
    assert first["loss_causal"] != first["loss_document"] and first["tokens"] == len(tokens)
    assert gate["loss_causal"] == pytest.approx(first["loss_causal"]) and gate["tokens"] == 2 * len(tokens)


def _dcp_checkpoint(path: Path, optimizer: bool) -> Path:
    """A checkpoint folder in the layout NeMo writes (weights/ as torch_dist + common.pt)."""
    import torch
    import torch.distributed.checkpoint as dcp

    state = {"module.w": torch.arange(6.0).reshape(2, 3)}
    common = {"global_step": 5, "state_dict": {}, "loops": {}, "content_metadata": {}}
    if optimizer:
        state["optimizer.state.exp_avg.module.w"] = torch.ones(2, 3)
        common.update(optimizer_states=[{"lr": 1.0}], lr_schedulers=[{}], optimizer={"param_groups": []})
    dcp.save(state, storage_writer=dcp.FileSystemWriter(str(path / "weights")), no_dist=True)
    torch.save(common, path / "weights" / "common.pt")
    (path / "weights" / "metadata.json").write_text('{"sharded_backend": "torch_dist"}')
    return path


def test_older_checkpoints_lose_their_optimizer_state_and_the_newest_keeps_it(tmp_path):
    import torch
    import torch.distributed.checkpoint as dcp

    from morphcpt.models.checkpoints import prune_older_optimizer_states, prune_optimizer_state

    old = _dcp_checkpoint(tmp_path / "step=4-consumed_samples=20.0", optimizer=True)
    new = _dcp_checkpoint(tmp_path / "step=9-consumed_samples=40.0", optimizer=True)
    saving = _dcp_checkpoint(tmp_path / "step=14-consumed_samples=60.0", optimizer=True)
    (tmp_path / (saving.name + "-unfinished")).write_text("")  # still being written: not touched
    assert prune_older_optimizer_states(tmp_path, 4) == [old.name]
    assert not has_optimizer_state(old) and has_optimizer_state(new) and has_optimizer_state(saving)
    loaded = {"module.w": torch.zeros(2, 3)}
    dcp.load(loaded, storage_reader=dcp.FileSystemReader(str(old / "weights")), no_dist=True)
    assert torch.equal(loaded["module.w"], torch.arange(6.0).reshape(2, 3))
    common = torch.load(old / "weights" / "common.pt", weights_only=False)
    assert sorted(common) == ["content_metadata", "global_step", "loops", "state_dict"]
    assert (old / "weights" / "metadata.json").is_file() and sorted(p.name for p in old.iterdir()) == ["weights"]
    assert prune_older_optimizer_states(tmp_path, 4) == []  # nothing left to prune
    # A prune cut off between its two renames is finished by the next call.
    (new / "weights").rename(new / "weights.with-optimizer")
    _dcp_checkpoint(tmp_path / "pruned", optimizer=False)
    (tmp_path / "pruned" / "weights").rename(new / "weights.pruning")
    (new / "weights.pruning" / ".complete").touch()
    assert prune_optimizer_state(new) is False  # the swap is completed; the result has no optimizer state
    assert sorted(p.name for p in new.iterdir()) == ["weights"] and not has_optimizer_state(new)
