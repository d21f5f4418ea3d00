"""Snakemake adapter for the import_parity rule (thin: the logic lives in the morphcpt package)."""
import os
import sys
from pathlib import Path


def main(smk):
    from morphcpt import container
    from morphcpt.models.nemo_io import describe_parity

    image = container.setting(smk.config["nemo_container"], smk.config["results_dir"])  # before any work
    report = container.call(image, smk.rule, smk.resources.gpu, "morphcpt.models.nemo_io:import_parity",
                            hf_dir=Path(smk.input.manifest).parent, nemo_dir=Path(smk.input.nemo),
                            thresholds=dict(smk.params.thresholds), report_path=Path(smk.output.report),
                            family=dict(smk.params.family))
    print(f"import_parity: passed, {describe_parity(report)}")


# Everything under the guard: Megatron's checkpoint writer starts a spawned multiprocessing
# Manager that re-imports this file as __mp_main__, where `snakemake` does not exist.
if __name__ == "__main__":
    os.environ["NVIDIA_TF32_OVERRIDE"] = "0"  # before anything starts CUDA: fp32 parity (hf_reference.strict_fp32)
    sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821
    from morphcpt.stage_io import run_stage

    run_stage(snakemake, main)  # noqa: F821
