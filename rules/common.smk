# Shared helpers of the rule files (resources from config, environments).
from morphcpt.estimates import out_mb as _out_mb
from morphcpt.rule_resources import gpu_resources as _gpu_resources, rule_resources as _rule_resources

CPU_ENV = "../envs/cpu.yaml"
EVAL_ENV = "../envs/eval.yaml"  # CUDA torch: the evaluate rule runs on GPUs
# The NeMo rules start the image of `nemo_container` themselves (morphcpt.container): their script
# runs on the host (in envs/nemo.yaml when conda is on, else where Snakemake runs) and their NeMo
# work in the image; no Snakemake container deployment, no apptainer for a dry run (docs/design.md §11).
NEMO_ENV = "../envs/nemo.yaml"


def rule_resources(rule):
    """A rule's resources from config (morphcpt.rule_resources)."""
    return _rule_resources(config, rule)


def gpu_resources(rule):
    """A GPU rule's resources from config (morphcpt.rule_resources)."""
    return _gpu_resources(config, rule)


def out_mb(rule):
    """The rule's expected output size in MB as a resource callable (see morphcpt.estimates)."""
    return lambda wildcards: _out_mb(config, rule, wildcards)


def reporting_sources(*modules):
    """The morphcpt.reporting modules that make a report output (inputs, so an edit rebuilds it)."""
    return [str(Path(workflow.basedir) / "src" / "morphcpt" / "reporting" / f"{m}.py") for m in modules]


def in_report(path, caption, category, content, family="{family}"):
    """An output shown in Snakemake's report: caption workflow/report/<caption>.rst, its stage's
    category, the family as subcategory, and labels for the report's table of results."""
    return report(path, caption=f"../workflow/report/{caption}.rst", category=category, subcategory=family,
                  labels={"family": family, "content": content})
