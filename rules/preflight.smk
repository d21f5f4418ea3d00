# Preflight (morphcpt.preflight): CHANGE_ME left in the profile's resources, or no Hugging Face
# token while a Hub download is pending, would fail a run only after jobs were submitted. They are
# warnings at parse time (so a dry run shows them) and stop a real run in `onstart`, before its
# first job, with one line. Nothing here needs apptainer (docs/design.md §11).
from snakemake.logging import logger

from morphcpt.preflight import preflight_problems


def _as_written(resources):
    """Resource values as the profile or command line wrote them (Snakemake wraps them in Resource)."""
    return {name: getattr(value, "raw", value) for name, value in (resources or {}).items()}


def _preflight(download_jobs=None):
    settings = workflow.resource_settings
    return preflight_problems(
        config,
        layout,
        default_resources=_as_written(settings.default_resources),
        set_resources={rule: _as_written(res) for rule, res in (settings.overwrite_resources or {}).items()},
        download_jobs=download_jobs,
    )


def _download_jobs_to_run():
    """(rule, family) of the download jobs this run executes: only those need the token."""
    return [
        (job.rule.name, job.wildcards.get("family"))
        for job in workflow.dag.needrun_jobs()
        if job.rule.name in ("download_model", "download_corpus")
    ]


if workflow.is_main_process:
    for _problem in _preflight():
        logger.warning(f"morphcpt preflight: warning: {_problem} (a real run stops before its first job)")


onstart:
    if not workflow.touch:
        _problems = _preflight(_download_jobs_to_run())
        if _problems:
            raise WorkflowError("morphcpt preflight: " + " | ".join(_problems))
