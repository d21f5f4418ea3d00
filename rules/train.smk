# Stage: continued pretraining per family x mode with NeMo `llm.train`, restored from the
# imported weights (gated by import_parity). Checkpoints live in an undeclared folder next to
# the sentinel, so a failed or preempted job keeps them and its rerun resumes (docs/design.md §6).

from morphcpt.train_nodes import NODE_KEYS, node_resource


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
        **{k: v for k, v in gpu_resources("train").items() if k not in NODE_KEYS},
        # gpu=G on one node; nodes=N, gres=gpu:G, mpi, tasks=N on several (morphcpt.train_nodes)
        **{key: node_resource(config, key) for key in NODE_KEYS},
        out_mb=out_mb("train"),
    # No Snakemake retries: they would repeat a deterministic refusal (failed gate, changed
    # config, bad input), on Slurm after another wait for GPUs. Transient stops resume through
    # Slurm's requeue (preemption, node failure; a job stopped before its time limit requeues
    # itself after saving: morphcpt.models.slurm_requeue), or locally by running again.
    retries: 0
    conda:
        NEMO_ENV
    script:
        "../workflow/scripts/train.py"
