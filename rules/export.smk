# Stage: export each kept checkpoint to HF, with a parity gate (exported HF vs NeMo forward).
# The parity report is the export's last output: it exists only if the gate passed.
from snakemake.logging import logger

from morphcpt.models.export import deleted_checkpoints

# Checkpoints are not declared outputs: a deleted one is reported here (a dry run shows it).
if workflow.is_main_process:
    for _line in deleted_checkpoints(config, layout):
        logger.warning(f"morphcpt: warning: {_line}")


rule export:
    input:
        done=layout.train_done(),
        hf=layout.hf_manifest(),  # the base model: the export's config and tokenizer must equal its
    output:
        hf=directory(layout.export_dir()),
        parity=layout.export_parity(),
    params:
        family=lambda wc: config["families"][wc.family],
        checkpoint_dir=lambda wc: layout.p(wc.family, wc.mode, "train", "checkpoints"),
        thresholds=config["parity"],
        global_batch_size=config["training"]["global_batch_size"],
    log:
        layout.log("export", "{family}", "{mode}", "step_{step}"),
    threads: gpu_resources("export")["cpus_per_task"]
    resources:
        **gpu_resources("export"),
        out_mb=out_mb("export"),
    retries: 0  # ends in a gate: a failure is deterministic; its report stays as <parity>.failed
    conda:
        NEMO_ENV
    script:
        "../workflow/scripts/export.py"
