"""Snakemake adapter for the train rule (thin: the logic lives in the morphcpt package)."""
import json
import sys
from pathlib import Path


def main(smk):
    from morphcpt import container
    from morphcpt.errors import MorphcptError
    from morphcpt.models.train import make_spec, run_training

    image = container.setting(smk.config["nemo_container"], smk.config["results_dir"])  # before any work

    parity = json.loads(Path(smk.input.import_parity).read_text())
    if not parity.get("passed"):
        raise MorphcptError(f"{smk.input.import_parity}: the import parity gate did not pass; not training")
    spec = make_spec(family=smk.params.family, nemo_dir=Path(smk.input.nemo), hf_dir=Path(smk.input.hf).parent,
                     shard_files=list(smk.input.shards), train_dir=Path(smk.output.done).parent,
                     checkpoint_dir=Path(smk.params.checkpoint_dir), training=smk.params.training,
                     seed=smk.params.seed, gpus=int(smk.params.family["parallelism"]["gpus"]), threads=int(smk.threads))
    spec["container"] = image  # the NeMo work runs in the image when one is configured (docs/design.md §11)
    summary = run_training(spec, Path(smk.output.done), Path(smk.output.metrics))
    print(f"train: done, {summary['max_steps']} steps, final loss {summary['steps'][-1]['loss']:.4f}")


# Everything under the guard: checkpoint writers may spawn processes that re-import this file.
if __name__ == "__main__":
    sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1] / "src"))  # noqa: F821
    from morphcpt.stage_io import run_stage

    run_stage(snakemake, main)  # noqa: F821
