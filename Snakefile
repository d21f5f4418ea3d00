# morphcpt: does morphology-aware tokenization during continued pretraining help LLMs with
# Filipino word structure? One DAG from HF weights to a comparison table (see README.md).
#   snakemake --profile profiles/slurm all_llama      # on a Slurm GPU cluster
#   snakemake --profile profiles/local demo --configfile config/demo.yaml   # CPU demo
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from morphcpt.config import check_yaml_sources, config_source, validate_config
from morphcpt.errors import MorphcptError
from morphcpt.layout import Layout


# The real experiment is the default config. A --configfile on the command line replaces it
# (Snakemake would otherwise merge the two, and the demo would inherit the 8B families).
if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


try:
    # Snakemake's YAML reading keeps the last of two equal keys; the strict re-read refuses them.
    check_yaml_sources(workflow.overwrite_configfiles, argv=sys.argv)
    validate_config(config, source=config_source(workflow.overwrite_configfiles, workflow.config_settings.config))
except MorphcptError as exc:
    raise WorkflowError(str(exc)) from None

layout = Layout(config)


# eval_mode (a mode or "base") is constrained in the evaluate rule itself.
wildcard_constraints:
    **{k: v for k, v in layout.wildcard_constraints().items() if k != "eval_mode"},



include: "rules/common.smk"
include: "rules/download.smk"
include: "rules/convert.smk"
include: "rules/corpus.smk"
include: "rules/tokenize.smk"
include: "rules/train.smk"
include: "rules/export.smk"
include: "rules/evaluate.smk"
include: "rules/report.smk"
include: "rules/targets.smk"
include: "rules/preflight.smk"
