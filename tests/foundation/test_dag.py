"""The DAG seen by a dry run: job counts of every target on a small two-family config, and
`morphcpt plan` numbers against values computed by hand (docs/design.md §9)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest
import yaml

from morphcpt.layout import ARCHS, STAGES
from morphcpt.plan import make_plan

SMALL = {
    "results_dir": "results",
    "families": {
        "tiny_llama": {"arch": "llama", "source": "synthetic", "tokenizer": "llama3",
                       "parallelism": {"gpus": 0}},
        "small_gemma": {"arch": "gemma", "source": "hf", "hf_id": "google/gemma-2-2b",
                        "revision": "0" * 40, "nemo_model": "Gemma2Model", "nemo_config": "Gemma2Config2B",
                        "tokenizer": "gemma2", "params": 2.61e9},
    },
    "corpus": {"source": "local", "local_path": "corpus.jsonl", "chunks": 2},
    "modes": {"vanilla": {}, "stochastok": {}, "patok": {}},
    "training": {"max_steps": 4, "checkpoint_every": 2},
    "export": {"steps": [2, 4]},
    "evaluation": {"benchmarks": {b: {"source": "generated"} for b in
                                  ("pacute", "hierarchical", "cute", "langgame", "multi_digit_addition")}},
}
CHUNKS, MODES, STEPS, BENCHMARKS = 2, 3, 2, 5


def expected_jobs(n_families: int, stage: str) -> Counter:
    """Job counts by hand, for `n_families` families with distinct tokenizers."""
    jobs: Counter = Counter()
    if stage in ("models", "checkpoints", "exports", "evals", "all"):
        jobs.update(download_model=n_families, import_nemo=n_families, import_parity=n_families)
    if stage in ("shards", "checkpoints", "exports", "evals", "all"):
        jobs.update(download_model=0 if stage != "shards" else n_families)  # tokenizer source
        jobs.update(download_corpus=1, split_chunks=1, tokenize=n_families * CHUNKS * MODES)
    if stage in ("checkpoints", "exports", "evals", "all"):
        jobs.update(train=n_families * MODES)
    if stage in ("exports", "evals", "all"):
        jobs.update(export=n_families * MODES * STEPS)
    if stage in ("evals", "all"):
        jobs.update(fetch_benchmark=BENCHMARKS, evaluate=n_families * (MODES * STEPS + 1))  # one job per model, all benchmarks
    if stage == "all":
        jobs.update(aggregate=n_families, training_curves=n_families, run_summary=n_families, scores_page=n_families)
    return +jobs


@pytest.fixture(scope="module")
def small_config(tmp_path_factory):
    path = tmp_path_factory.mktemp("cfg") / "small.yaml"
    path.write_text(yaml.safe_dump(SMALL))
    return path


TARGETS = (
    [(f"all_{a}", 1, "all") for a in ARCHS]
    + [("all", 2, "all+compare"), ("demo", 2, "all+compare")]
    + [(f"{s}_{a}", 1, s) for s in STAGES for a in ARCHS]
    + [(s, 2, s) for s in STAGES]
)


@pytest.mark.parametrize("target,n_families,stage", TARGETS, ids=[t[0] for t in TARGETS])
def test_dry_run_job_counts(small_config, tmp_path, target, n_families, stage):
    plan = make_plan(target, small_config, full=True, workdir=tmp_path)
    want = expected_jobs(n_families, stage.replace("+compare", ""))
    if stage.endswith("+compare"):
        want.update(compare=1, comparison_page=1)
    assert plan["jobs"] == dict(want)


def test_plan_of_the_real_experiment_matches_hand_computed_values(repo_root, tmp_path):
    plan = make_plan("all_llama", repo_root / "config" / "config.yaml", full=True, workdir=tmp_path)
    assert plan["jobs"] == {
        "download_model": 1, "import_nemo": 1, "import_parity": 1, "download_corpus": 1, "split_chunks": 1,
        "tokenize": 60, "train": 3, "export": 15, "fetch_benchmark": 5, "evaluate": 16, "aggregate": 1,
        "training_curves": 1, "run_summary": 1, "scores_page": 1,
    }
    params = 8.03e9
    # Each kept checkpoint once, weights only after the run: the optimizer state is pruned from
    # every checkpoint once a newer one is complete, and the one after max_steps never has it.
    per_checkpoint = params * 2 + 1.7e7  # bf16 weights + context/
    assert plan["bytes"]["train"] == pytest.approx(3 * 5 * per_checkpoint)
    assert plan["bytes"]["export"] == pytest.approx(15 * 2 * params)
    assert plan["bytes"]["import_nemo"] == pytest.approx(2 * params)
    # shards: 2e9 tokens over 20 chunks, ratios 1.0/1.09/1.12, 4 B/token + 12 B per document (4e6 docs)
    shard_bytes = 20 * sum((2e9 / 20) * r * 4 + (4e6 / 20) * 12 for r in (1.0, 1.09, 1.12))
    assert plan["bytes"]["tokenize"] == pytest.approx(shard_bytes)
    assert plan["total_bytes"] == pytest.approx(sum(plan["bytes"].values()))
    tokens = 5000 * 64 * 512
    assert plan["gpu_hours"] == pytest.approx(3 * 6 * params * tokens / (0.4 * 989e12) / 3600, rel=1e-3)


def test_plan_cli_json(repo_root):
    proc = subprocess.run([sys.executable, "-m", "morphcpt.cli", "plan", "all_llama", "--full", "--json"],
                          capture_output=True, text=True, timeout=120, cwd=repo_root)
    assert proc.returncode == 0, proc.stderr
    plan = json.loads(proc.stdout)
    assert set(plan) == {"jobs", "bytes", "total_bytes", "gpu_hours", "gpu_memory", "runtime"}
    assert plan["jobs"]["tokenize"] == 60 and plan["jobs"]["evaluate"] == 16 and plan["jobs"]["train"] == 3
    (memory,) = plan["gpu_memory"].values()  # only the family all_llama trains
    assert set(memory["gib"]) == {"weights", "grads", "optimizer", "activations", "logits", "reserve"}
    assert memory["tensor"] == 1 and memory["data_parallel"] == 8 and memory["fits"]
    assert memory["total_gib"] == pytest.approx(70.09, abs=0.05)  # tests/foundation/test_memory_estimate.py


def test_plan_cli_prints_gpu_memory_and_warns_when_over(plan_cli_with):
    # micro batch 8: ~80.1 GiB per GPU for 8B at TP=1
    proc = plan_cli_with(lambda config: config["training"].update(micro_batch_size=8))
    assert "GPU memory per GPU of the train jobs" in proc.stdout
    row = next(line for line in proc.stdout.splitlines() if line.startswith("llama31_8b"))
    assert row.split()[1:5] == ["1", "1", "8", "8"] and row.endswith("OVER")
    assert "warning: families.llama31_8b: estimated 80." in proc.stderr
    assert "exceeds plan.gpu_memory_gib (80)" in proc.stderr


def test_plan_warns_about_an_unpinned_corpus(repo_root):
    from morphcpt.config import load_config
    from morphcpt.plan import unpinned_sources

    config = load_config(repo_root / "config" / "config.yaml")
    config["corpus"]["revision"] = "main"
    assert unpinned_sources(config) == ["corpus.revision is 'main', not a 40-hex commit"]
    config["corpus"]["revision"] = "a" * 40
    assert unpinned_sources(config) == []


def test_plan_unknown_target_is_one_line(small_config, tmp_path):
    from morphcpt.errors import MorphcptError

    with pytest.raises(MorphcptError, match="dry run of target 'no_such_target'"):
        make_plan("no_such_target", small_config, full=True, workdir=tmp_path)


def test_workflow_lint_is_clean(repo_root):
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--lint"], capture_output=True, text=True,
                          timeout=300, cwd=repo_root)
    assert "Congratulations, your workflow is in a good condition!" in proc.stdout + proc.stderr, proc.stdout[-3000:]
