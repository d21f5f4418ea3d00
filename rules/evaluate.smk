# Stage: benchmarks. Each benchmark is fetched from a pinned source (sha256-checked) or
# generated with a seed, normalized to one item schema, then scored with lm-evaluation-harness
# for the base model (mode "base", step 0) and every export.


rule fetch_benchmark:
    output:
        benchmark_items=layout.benchmark_items(),
    params:
        spec=lambda wc: config["evaluation"]["benchmarks"][wc.benchmark],
        seed=config["evaluation"]["seed"],
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
    output:
        result=layout.evaluation(mode="{eval_mode}"),
    params:
        evaluation=config["evaluation"],
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
