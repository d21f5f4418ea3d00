# Stage: benchmarks. Each benchmark is fetched from a pinned source (sha256-checked) or
# generated with a seed, normalized to one item schema, then scored with lm-evaluation-harness
# for the base model (mode "base", step 0) and every export. The normalizer, generator and
# scoring code are inputs: editing them re-creates the items / re-scores what used them.
from morphcpt.evaluation.sources import sources_manifest_path

BENCHMARK_SOURCES = [
    str(Path(workflow.basedir) / "src" / "morphcpt" / "evaluation" / f)
    for f in ("items.py", "sources.py", "generators.py")
]
SCORING_SOURCES = [
    str(Path(workflow.basedir) / "src" / "morphcpt" / "evaluation" / f)
    for f in ("run.py", "scoring.py")
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
    input:
        unpack(lambda wc: layout.evaluated_model(wc.family, wc.eval_mode, wc.step)),
        benchmark_items=layout.benchmark_items(),
        sources=str(sources_manifest_path(layout.benchmark_items())),
        code=SCORING_SOURCES,
    output:
        result=layout.evaluation(mode="{eval_mode}"),
    params:
        # only what changes scores: adding a benchmark to the config must not rerun the others
        evaluation={
            k: config["evaluation"].get(k)
            for k in ("seed", "batch_size", "max_gen_tokens", "limit")
        },
    wildcard_constraints:
        eval_mode=layout.wildcard_constraints()["eval_mode"],
    log:
        layout.log("evaluate", "{family}", "{eval_mode}", "step_{step}", "{benchmark}"),
    threads: gpu_resources("evaluate")["cpus_per_task"]
    resources:
        **gpu_resources("evaluate"),
        out_mb=out_mb("evaluate"),
    conda:
        CPU_ENV
    script:
        "../workflow/scripts/evaluate.py"
