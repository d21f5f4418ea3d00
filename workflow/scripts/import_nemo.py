"""Snakemake adapter for the import_nemo rule (thin: the logic lives in the morphcpt package)."""
import sys
from pathlib import Path


def main(smk):
    from morphcpt.models.download import verify_manifest
    from morphcpt.models.nemo_io import import_nemo

    hf_dir = Path(smk.input.manifest).parent
    verify_manifest(Path(smk.input.manifest))
    out = import_nemo(hf_dir, Path(smk.output.nemo), smk.params.family)
    print(f"import_nemo: {hf_dir} -> {out}")


# Everything under the guard: Megatron's checkpoint writer starts a spawned multiprocessing
# Manager that re-imports this file as __mp_main__, where `snakemake` does not exist.
if __name__ == "__main__":
    sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821
    from morphcpt.stage_io import run_stage

    run_stage(snakemake, main)  # noqa: F821
