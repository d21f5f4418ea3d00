# Stage: benchmarks. Each benchmark is fetched from a pinned source (sha256-checked) or
# generated with a seed, normalized to one item schema, then scored with lm-evaluation-harness
# for the base model (mode "base", step 0) and every export, all benchmarks in one job per model. The normalizer, generator and
# scoring code are inputs: editing them re-creates the items / re-scores what used them.
from morphcpt.evaluation.sources import sources_manifest_path
from morphcpt.evaluation.task_folder import task_folder_of

BENCHMARK_SOURCES = [
    str(Path(workflow.basedir) / "src" / "morphcpt" / "evaluation" / f)
    for f in ("items.py", "sources.py", "generators.py")
]
SCORING_SOURCES = [
    str(Path(workflow.basedir) / "src" / "morphcpt" / "evaluation" / f)
    for f in ("run.py", "scoring.py", "fewshot.py", "task_folder.py", "summary.py")
]


rule fetch_benchmark:
    input:
        # a local benchmark file is an input: editing it re-creates the items
        unpack(
            lambda wc: (
                {"local": config["evaluation"]["benchmarks"][wc.benchmark]["local_path"]}
                if config["evaluation"]["benchmarks"][wc.benchmark]["source"] == "local"
                else {}
            )
        ),
        code=BENCHMARK_SOURCES,
    output:
        benchmark_items=layout.benchmark_items(),
        sources=str(sources_manifest_path(layout.benchmark_items())),
    params:
        spec=lambda wc: config["evaluation"]["benchmarks"][wc.benchmark],
        seed=config["evaluation"].get("seed", 1234),
        language=config["evaluation"].get("prompt_language", "en"),
    log:
        layout.log("fetch_benchmark", "{benchmark}"),
    threads: 1
    resources:
        **rule_resources("fetch_benchmark"),
        out_mb=out_mb("fetch_benchmark"),
    conda:
        CPU_ENV
    script:
        "../workflow/scripts/fetch_benchmark.py"


rule evaluate:
    # one job per (family, mode, step): the model is loaded once and scores every benchmark
    input:
        unpack(lambda wc: layout.evaluated_model(wc.family, wc.eval_mode, wc.step)),
        benchmark_items=[layout.benchmark_items(b) for b in layout.benchmarks],
        sources=[str(sources_manifest_path(layout.benchmark_items(b))) for b in layout.benchmarks],
        code=SCORING_SOURCES,
    output:
        results=[layout.evaluation(mode="{eval_mode}", benchmark=b) for b in layout.benchmarks],
        # the lm-eval task folders scored (YAML, data, utils.py): `lm_eval --include_path` reruns them
        tasks=[
            directory(str(task_folder_of(layout.evaluation(mode="{eval_mode}", benchmark=b))))
            for b in layout.benchmarks
        ],
    params:
        benchmarks=layout.benchmarks,
        # only what changes scores
        evaluation={
            k: config["evaluation"].get(k)
            for k in ("seed", "batch_size", "max_gen_tokens", "limit", "num_fewshot")
        },
    wildcard_constraints:
        eval_mode=layout.wildcard_constraints()["eval_mode"],
    log:
        layout.log("evaluate", "{family}", "{eval_mode}", "step_{step}"),
    threads: gpu_resources("evaluate")["cpus_per_task"]
    resources:
        **gpu_resources("evaluate"),
        out_mb=out_mb("evaluate"),
    conda:
        EVAL_ENV
    script:
        "../workflow/scripts/evaluate.py"
