# Stage: model weights. HF snapshot at a pinned revision (token from the environment only),
# or a synthetic tiny model for tests and the demo.


rule download_model:
    output:
        manifest=layout.hf_manifest(),
    params:
        family=lambda wc: config["families"][wc.family],
        seed=config["seed"],
    log:
        layout.log("download_model", "{family}"),
    threads: rule_resources("download_model")["cpus_per_task"]
    resources:
        **rule_resources("download_model"),
        out_mb=out_mb("download_model"),
    conda:
        CPU_ENV
    script:
        "../workflow/scripts/download_model.py"
