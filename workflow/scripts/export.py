"""Snakemake adapter for the export rule (thin: the logic lives in the morphcpt package)."""
import os
import sys
from pathlib import Path


def main(smk):
    from morphcpt.models.export import export_checkpoint
    from morphcpt.models.nemo_io import describe_parity

    report = export_checkpoint(Path(smk.params.checkpoint_dir), int(smk.wildcards.step),
                               smk.params.global_batch_size, Path(smk.output.hf), Path(smk.input.hf).parent,
                               dict(smk.params.thresholds), Path(smk.output.parity))
    print(f"export: step {smk.wildcards.step} passed parity, {describe_parity(report)}")


# Everything under the guard: checkpoint loaders/writers may spawn processes that re-import this file.
if __name__ == "__main__":
    os.environ["NVIDIA_TF32_OVERRIDE"] = "0"  # before anything starts CUDA: fp32 parity (hf_reference.strict_fp32)
    sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821
    from morphcpt.stage_io import run_stage

    run_stage(snakemake, main)  # noqa: F821
