# Stage: HF -> NeMo import, then a parity gate (NeMo forward vs HF forward) whose failure
# stops everything downstream: training depends on the gate's report, not only on the import.


rule import_nemo:
    input:
        manifest=layout.hf_manifest(),
    output:
        nemo=directory(layout.nemo_dir()),
    params:
        family=lambda wc: config["families"][wc.family],
    log:
        layout.log("import_nemo", "{family}"),
    threads: gpu_resources("import_nemo")["cpus_per_task"]
    resources:
        **gpu_resources("import_nemo"),
        out_mb=out_mb("import_nemo"),
    conda:
        NEMO_ENV
    script:
        "../workflow/scripts/import_nemo.py"


rule import_parity:
    input:
        manifest=layout.hf_manifest(),
        nemo=layout.nemo_dir(),
    output:
        report=layout.import_parity(),
    params:
        family=lambda wc: config["families"][wc.family],
        thresholds=config["parity"],
    log:
        layout.log("import_parity", "{family}"),
    threads: gpu_resources("import_parity")["cpus_per_task"]
    resources:
        **gpu_resources("import_parity"),
        out_mb=out_mb("import_parity"),
    retries: 0  # a gate: a failure is deterministic; its report stays as nemo_parity.json.failed
    conda:
        NEMO_ENV
    script:
        "../workflow/scripts/import_parity.py"
