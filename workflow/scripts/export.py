"""Snakemake adapter for the export rule (thin: the logic lives in the morphcpt package)."""
import os
import sys
from pathlib import Path


def main(smk):
    from morphcpt import container
    from morphcpt.models.nemo_io import describe_parity

    image = container.setting(smk.config["nemo_container"], smk.config["results_dir"])  # before any work
    report = container.call(image, smk.rule, smk.resources.gpu, "morphcpt.models.export:export_checkpoint",
                            checkpoint_dir=Path(smk.params.checkpoint_dir), step=int(smk.wildcards.step),
                            global_batch_size=int(smk.params.global_batch_size), out_dir=Path(smk.output.hf),
                            base_hf_dir=Path(smk.input.hf).parent, thresholds=dict(smk.params.thresholds),
                            report_path=Path(smk.output.parity))
    print(f"export: step {smk.wildcards.step} passed parity, {describe_parity(report)}")


# Everything under the guard: checkpoint loaders/writers may spawn processes that re-import this file.
if __name__ == "__main__":
    os.environ["NVIDIA_TF32_OVERRIDE"] = "0"  # before anything starts CUDA: fp32 parity (hf_reference.strict_fp32)
    sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821
    from morphcpt.stage_io import run_stage

    run_stage(snakemake, main)  # noqa: F821
