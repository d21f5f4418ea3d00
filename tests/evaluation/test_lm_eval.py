"""Scoring through lm-evaluation-harness: the generated tasks with fake models (oracle = 100 %,
knows-nothing = per-item chance), then a tiny HF model on all five benchmarks (result schema,
provenance, determinism) and the `morphcpt eval` CLI."""

from __future__ import annotations

import json

import pytest

from morphcpt.evaluation.items import normalize_file
from morphcpt.evaluation.run import (RESULT_SCHEMA_KEYS, evaluate_checkpoint, evaluate_model, hash_model_dir,
                                     score_items, write_result)
from morphcpt.evaluation.scoring import format_context
from morphcpt.evaluation.sources import fetch_benchmark, sha256_file
from morphcpt.evaluation.task_folder import task_folder_of

BENCHMARKS = ("pacute", "hierarchical", "cute", "langgame", "multi_digit_addition")


def _fake_lm_class():
    from lm_eval.api.model import LM

    class FakeLM(LM):
        """Answers from the items themselves: `oracle` knows every gold, otherwise all choices are
        equally likely and generations are empty."""

        def __init__(self, items, oracle: bool):
            super().__init__()
            self.oracle = oracle
            self.gold = {}
            for it in items:
                key = (it["format"], format_context(it["prompt"]))
                self.gold[key] = it["choices"][it["gold"]] if it["format"] == "mcq" else it["answer"]

        def loglikelihood(self, requests):
            out = []
            for req in requests:
                context, continuation = req.args
                hit = continuation.strip() == self.gold[("mcq", context)]
                out.append((0.0 if (self.oracle and hit) else -4.0, hit))
            return out

        def loglikelihood_rolling(self, requests):
            raise NotImplementedError

        def generate_until(self, requests):
            return [(" " + self.gold[("gen", req.args[0])]) if self.oracle else "" for req in requests]

    return FakeLM


@pytest.fixture(scope="module")
def normalized(source_files):
    return {b: normalize_file(source_files[b], b, seed=11) for b in BENCHMARKS}


@pytest.mark.parametrize("benchmark", BENCHMARKS)
def test_oracle_and_constant_models_through_lm_eval(normalized, benchmark):
    items = normalized[benchmark]
    fake = _fake_lm_class()
    oracle = score_items(fake(items, oracle=True), items, benchmark, seed=1, max_gen_tokens=8)
    constant = score_items(fake(items, oracle=False), items, benchmark, seed=1, max_gen_tokens=8)
    mcq = [it for it in items if it["format"] == "mcq"]
    gen = [it for it in items if it["format"] == "gen"]
    if mcq:
        o, c = oracle["summary"]["mcq"], constant["summary"]["mcq"]
        assert o["micro"]["acc"]["value"] == 1.0 and o["macro"]["acc"]["value"] == 1.0
        assert o["micro"]["acc_norm"]["value"] == 1.0
        chance = sum(1 / len(it["choices"]) for it in mcq) / len(mcq)
        assert c["micro"]["acc"]["value"] == pytest.approx(chance, abs=1e-9)
        assert c["micro"]["acc_chance_corrected"]["value"] == pytest.approx(0.0, abs=1e-9)
        assert c["n"] == len(mcq) and sum(s["n"] for s in c["subtasks"].values()) == len(mcq)
        assert oracle["results"][f"morphcpt_{benchmark}_mcq"]["acc,none"] == 1.0  # the lm-eval group
    if gen:
        assert oracle["summary"]["gen"]["micro"]["normalized_match"]["value"] == 1.0
        assert oracle["summary"]["gen"]["micro"]["exact_match"]["value"] == 1.0
        assert constant["summary"]["gen"]["micro"]["normalized_match"]["value"] == 0.0
    assert {r["id"] for r in oracle["item_scores"]} == {it["id"] for it in items}
    json.dumps(oracle)  # serializable
    assert all(k in oracle for k in RESULT_SCHEMA_KEYS)


@pytest.fixture(scope="module")
def benchmark_items(tmp_path_factory, source_files):
    root = tmp_path_factory.mktemp("bench")
    out = {}
    for b in BENCHMARKS:
        spec = ({"source": "generated"} if b in ("langgame", "multi_digit_addition")
                else {"source": "local", "local_path": str(source_files[b])})
        fetch_benchmark(b, spec, 7, root / f"{b}.jsonl")
        out[b] = root / f"{b}.jsonl"
    return out


@pytest.fixture(scope="module")
def tiny_results(tmp_path_factory, tiny_model_dir, benchmark_items):
    """The tiny model, loaded once, on all five benchmarks, 4 items per format, 1-shot."""
    root = tmp_path_factory.mktemp("results")
    results = {}
    scored = evaluate_checkpoint(tiny_model_dir, benchmark_items, seed=7, batch_size=4, max_gen_tokens=4,
                                 num_fewshot={"mcq": 1, "gen": 1}, limit=4, device="cpu",
                                 task_dirs={b: task_folder_of(root / f"{b}.json") for b in benchmark_items},
                                 extra_provenance={"family": "tiny", "mode": "base", "step": 0})
    for b, res in scored.items():
        write_result(res, root / f"{b}.json")
        text = (root / f"{b}.json").read_text()
        results[b] = json.loads(text, parse_constant=lambda c: pytest.fail(f"{b}: {c} in the result JSON"))
    return results


@pytest.mark.slow
def test_tiny_model_produces_results_for_all_benchmarks(tiny_results, tiny_model_dir, benchmark_items):
    for b, res in tiny_results.items():
        assert all(k in res for k in RESULT_SCHEMA_KEYS), b
        assert set(res["summary"]) == ({"gen"} if b == "cute" else {"mcq", "gen"})
        assert {f"morphcpt_{b}_{f}" for f in res["summary"]} <= set(res["results"])  # the lm-eval groups
        for fmt, s in res["summary"].items():
            assert s["n"] == 4 and sum(x["n"] for x in s["subtasks"].values()) == 4
            for cell in (s["micro"], s["macro"], *s["subtasks"].values()):
                for key in ("acc", "acc_norm", "normalized_match", "exact_match", "contains_match"):
                    if key in cell:
                        assert 0.0 <= cell[key]["value"] <= 1.0
        if "mcq" in res["summary"]:
            assert res["prefix_pairs"]["items_with_terminator"] == 0
        shots = {f: s["n_shot"] for f, s in res["summary"].items()}
        assert all(v == ({"added": 0, "in_prompt": 4, "total": 4} if b == "cute" else {"added": 1, "in_prompt": 0, "total": 1})
                   for v in shots.values())
        for fmt, s in res["summary"].items():
            if fmt == "gen":  # from the golds' token lengths, at most the cap of 4
                assert all(1 <= v <= 4 for v in s["max_gen_toks"].values())
        prov = res["provenance"]
        assert prov["model"] == hash_model_dir(tiny_model_dir)
        assert prov["items_sha256"] == sha256_file(benchmark_items[b])
        assert prov["sources"]["items_sha256"] == prov["items_sha256"]
        assert prov["seeds"]["torch"] == 7 and prov["batch_size"] == 4
        assert prov["dtype"] == "float32" and prov["device"] == "cpu"
        assert prov["packages"]["lm_eval"] == "0.4.13"
        # the true config: the YAML's functions as source, the model as lm_eval's CLI would load it
        assert all(c["process_results"].startswith("def process_results") for c in res["configs"].values())
        assert all(c["num_fewshot"] == 0 and c["metadata"]["shots_in_prompt"] == res["n-shot"][t]
                   for t, c in res["configs"].items())
        config = res["config"]
        assert config["limit"] == 4 and config["batch_size"] == 4 and config["device"] == "cpu"
        assert config["model"] == "hf" and config["model_args"].startswith(f"pretrained={tiny_model_dir},dtype=float32")
        assert res["reproduce"].startswith("lm_eval --model hf") and "--include_path" in res["reproduce"]
        for rec in res["item_scores"]:
            assert rec["question_type"] and isinstance(rec["shot_ids"], list)
            if rec["format"] == "mcq":
                assert len(rec["prediction"]) >= 2  # one log-likelihood per choice


@pytest.mark.slow
def test_cli_eval_is_deterministic(tmp_path, tiny_model_dir, benchmark_items, tiny_results):
    from morphcpt.cli import main

    out = tmp_path / "hier.json"
    assert main(["eval", "--model", str(tiny_model_dir), "--benchmark", "hierarchical", "--items",
                 str(benchmark_items["hierarchical"]), "--output", str(out), "--seed", "7", "--batch-size", "4",
                 "--max-gen-tokens", "4", "--limit", "4", "--device", "cpu", "--mcq-shots", "1",
                 "--gen-shots", "1"]) == 0
    again = json.loads(out.read_text())
    assert again["summary"] == tiny_results["hierarchical"]["summary"]
    assert again["item_scores"] == tiny_results["hierarchical"]["item_scores"]


def test_eval_refuses_a_folder_without_a_model(tmp_path, benchmark_items):
    from morphcpt.cli import main

    assert main(["eval", "--model", str(tmp_path), "--benchmark", "cute", "--items", str(benchmark_items["cute"]),
                 "--output", str(tmp_path / "x.json")]) == 1


@pytest.mark.slow
def test_gemma2_is_scored_with_eager_attention(tmp_path, llama3_tokenizer_dir, benchmark_items, monkeypatch):
    """SDPA silently drops Gemma 2's attention soft-capping; evaluation must load it eagerly."""
    import shutil

    import lm_eval.models.huggingface as hf_module
    import torch
    from transformers import Gemma2Config, Gemma2ForCausalLM

    torch.manual_seed(0)
    config = Gemma2Config(vocab_size=128256, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                          num_attention_heads=2, num_key_value_heads=1, head_dim=16, max_position_embeddings=512,
                          bos_token_id=128000, eos_token_id=128001, pad_token_id=128001)
    model_dir = tmp_path / "tiny_gemma2"
    Gemma2ForCausalLM(config).save_pretrained(model_dir)
    for f in llama3_tokenizer_dir.iterdir():
        shutil.copy(f, model_dir / f.name)
    seen = {}

    class RecordingHFLM(hf_module.HFLM):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            seen["attn"] = self.model.config._attn_implementation
            seen["first_id"] = self._encode_pair("Question: x\nAnswer:", " yes")[0][0]

    monkeypatch.setattr(hf_module, "HFLM", RecordingHFLM)
    result = evaluate_model(model_dir, benchmark_items["cute"], "cute", seed=1, batch_size=2, max_gen_tokens=2,
                            limit=2, device="cpu", task_dir=tmp_path / "cute.lm_eval_tasks")
    assert seen["attn"] == "eager"
    assert seen["first_id"] == 128000  # contexts start with BOS
    assert result["provenance"]["model_kwargs"] == {"add_bos_token": True, "attn_implementation": "eager"}


def test_a_gpu_job_without_cuda_fails_clearly(monkeypatch):
    import torch

    from morphcpt.errors import MorphcptError
    from morphcpt.evaluation.run import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(MorphcptError, match=r"given 1 GPU\(s\) but torch .* sees no CUDA"):
        resolve_device(None, gpus=1)
    assert resolve_device(None, gpus=0) == "cpu"


@pytest.mark.slow
def test_prefix_pair_tokens_are_the_tokens_hflm_scores(tiny_model_dir):
    """`continuation_tokens` (which the prefix-pair counts use) equals HFLM's own encoding of the pair."""
    from morphcpt.evaluation.run import load_lm, tokenizer_encoder
    from morphcpt.evaluation.scoring import continuation_tokens, mcq_continuation

    lm, setup = load_lm(tiny_model_dir, device="cpu", batch_size="auto")
    assert setup["dtype"] == "float32" and setup["batch_size"] == 8 and setup["max_length"] <= 2048
    encode = tokenizer_encoder(lm)
    for context, option in [("520+515=", "1035"), ("What is the root?\nAnswer:", "kain"),
                            ("Spell it. Answer: ", "b a h a y"), ("Which?\nAnswer:", "is Ben scared.")]:
        continuation = " " + mcq_continuation(option)
        assert continuation_tokens(encode, context, continuation) == lm._encode_pair(context, continuation)[1]


@pytest.mark.slow
def test_lm_eval_cli_reproduces_the_pipeline_scores(tmp_path, tiny_results):
    """The task folder the pipeline wrote, run by the real `lm_eval` CLI (`--model hf`) with the
    command in the result JSON: the same scores per group and per item, the same n-shot. PACUTE
    (MCQ and GEN, 1-shot, six categories incl. affixation); one CLI run takes ~60 s on 2 cores."""
    benchmark = "pacute"
    import glob
    import shlex
    import subprocess
    import sys
    from pathlib import Path

    res = tiny_results[benchmark]
    argv = shlex.split(res["reproduce"])
    assert argv[0] == "lm_eval"
    argv[0] = str(Path(sys.executable).with_name("lm_eval"))
    proc = subprocess.run(argv + ["--output_path", str(tmp_path), "--log_samples"], capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (out,) = glob.glob(str(tmp_path / "**" / "results_*.json"), recursive=True)
    cli = json.loads(Path(out).read_text())
    for fmt, s in res["summary"].items():
        group = f"morphcpt_{benchmark}_{fmt}"
        for metric, cell in s["micro"].items():
            assert cli["results"][group][f"{metric},none"] == pytest.approx(cell["value"], abs=1e-9), (group, metric)
        for task in cli["group_subtasks"][group]:
            assert cli["configs"][task]["metadata"]["shots_in_prompt"] == s["n_shot"]["total"] == res["n-shot"][task]
            assert cli["n-samples"][task] == res["n-samples"][task]
    primary = {"mcq": "acc", "gen": "normalized_match"}
    ours = {r["id"]: r[primary[r["format"]]] for r in res["item_scores"]}
    theirs = {}
    for path in glob.glob(str(tmp_path / "**" / "samples_*.jsonl"), recursive=True):
        for line in Path(path).read_text().splitlines():
            sample = json.loads(line)
            theirs[sample["doc"]["id"]] = sample[primary[sample["doc"]["format"]]]
    assert theirs == ours


def test_morphcpt_eval_defaults_are_the_pipelines():
    """`morphcpt eval` without options scores as the evaluate rule does with the default config."""
    import yaml

    from morphcpt.cli import build_parser
    from morphcpt.config import SCHEMA_PATH

    ev = yaml.safe_load(SCHEMA_PATH.read_text())["properties"]["evaluation"]["properties"]
    args = build_parser("eval").parse_args(["eval", "--model", "m", "--benchmark", "pacute", "--items", "i",
                                            "--output", "o.json"])
    assert args.seed == ev["seed"]["default"] and args.max_gen_tokens == ev["max_gen_tokens"]["default"]
    assert args.mcq_shots == ev["num_fewshot"]["properties"]["mcq"]["default"] == 3
    assert args.gen_shots == ev["num_fewshot"]["properties"]["gen"]["default"] == 3
    assert args.batch_size == ev["batch_size"]["default"] and args.limit is None


def test_micro_stderr_is_over_the_items_not_lm_evals_pooled_one():
    """lm-eval's pooled group stderr was 0.0 for hierarchical acc 2/12 in the demo (each level's two
    items scored alike); the summary's stderr is the items' sample sd / sqrt(n)."""
    import math
    import statistics

    from morphcpt.evaluation.summary import micro_cell

    values = [1.0, 1.0] + [0.0] * 10
    cell = micro_cell({"acc,none": 2 / 12, "acc_stderr,none": 0.0}, "acc", values)
    assert cell["value"] == pytest.approx(2 / 12)
    assert cell["stderr"] == pytest.approx(statistics.stdev(values) / math.sqrt(12)) and cell["stderr"] > 0.1


def test_prompts_longer_than_the_window_stop_before_scoring(normalized):
    from morphcpt.errors import MorphcptError
    from morphcpt.evaluation.run import check_context_budget
    from morphcpt.evaluation.task_folder import plan_tasks

    plan = plan_tasks(normalized["pacute"], "pacute", seed=1, num_fewshot={"mcq": 2, "gen": 2}, limit=None)
    encode = lambda text: list(text.encode())  # noqa: E731  (one token per byte)
    check_context_budget(plan, encode, max_gen_tokens=8, max_length=2048, benchmark="pacute")
    with pytest.raises(MorphcptError, match="more than the window of 100; lower evaluation.num_fewshot"):
        check_context_budget(plan, encode, max_gen_tokens=8, max_length=100, benchmark="pacute")
