"""Snakemake adapter for the import_nemo rule (thin: the logic lives in the morphcpt package)."""
import sys
from pathlib import Path


def main(smk):
    from morphcpt import container
    from morphcpt.models.download import verify_manifest

    image = container.setting(smk.config["nemo_container"], smk.config["results_dir"])  # before any work
    hf_dir = Path(smk.input.manifest).parent
    verify_manifest(Path(smk.input.manifest))
    out = container.call(image, smk.rule, smk.resources.gpu, "morphcpt.models.nemo_io:import_nemo",
                         hf_dir=hf_dir, out_dir=Path(smk.output.nemo), family=dict(smk.params.family))
    print(f"import_nemo: {hf_dir} -> {out}")


# Everything under the guard: Megatron's checkpoint writer starts a spawned multiprocessing
# Manager that re-imports this file as __mp_main__, where `snakemake` does not exist.
if __name__ == "__main__":
    sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821
    from morphcpt.stage_io import run_stage

    run_stage(snakemake, main)  # noqa: F821
