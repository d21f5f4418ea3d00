# Stage: continued pretraining per family x mode with NeMo `llm.train`, restored from the
# imported weights (gated by import_parity). Checkpoints live in an undeclared folder next to
# the sentinel, so a failed or preempted job keeps them and its rerun resumes (docs/design.md §6).


rule train:
    input:
        nemo=layout.nemo_dir(),
        import_parity=layout.import_parity(),
        hf=layout.hf_manifest(),  # the HF model gives the step-0 reference loss
        shards=lambda wc: layout.train_shards(wc.family, wc.mode),
    output:
        done=layout.train_done(),
        metrics=layout.train_metrics(),
    params:
        family=lambda wc: config["families"][wc.family],
        training=config["training"],
        checkpoint_dir=lambda wc: layout.p(wc.family, wc.mode, "train", "checkpoints"),
        seed=config["seed"],
    log:
        layout.log("train", "{family}", "{mode}"),
    threads: gpu_resources("train")["cpus_per_task"]
    resources:
        **{k: v for k, v in gpu_resources("train").items() if k != "gpu"},
        gpu=lambda wc: config["families"][wc.family]["parallelism"]["gpus"],
        out_mb=out_mb("train"),
    # Retries resume a preempted or timed-out run from its last checkpoint. A failed step-0 gate is
    # not retried: its report is kept and the retried job stops at once, before any GPU work.
    retries: 2
    conda:
        NEMO_ENV
    container:
        NEMO_CONTAINER
    script:
        "../workflow/scripts/train.py"
