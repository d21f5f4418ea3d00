"""Print, as JSON, the sbatch command the Slurm executor plugin builds for each job of a target
(`python sbatch_lines.py CONFIGFILE TARGET`, run from the repository root): the workflow's DAG
from Snakemake's API, each job through the plugin's own `get_submit_command`. Used by
tests/slurm/test_sbatch_command.py; a subprocess, because Snakemake's API sets up process-wide logging."""

import json
import sys
from pathlib import Path

if __name__ == "__main__":
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, DAGSettings, OutputSettings, ResourceSettings, StorageSettings
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command

    configfile, target = sys.argv[1], sys.argv[2]
    params = dict(run_uuid="UUID", slurm_logfile="LOG", comment_str="COMMENT", account="-A ACCOUNT",
                  partition="-p PARTITION", workdir="WORKDIR")
    with SnakemakeApi(OutputSettings()) as api:
        workflow_api = api.workflow(resource_settings=ResourceSettings(), storage_settings=StorageSettings(),
                                    config_settings=ConfigSettings(configfiles=[Path(configfile)]),
                                    snakefile=Path("Snakefile"), workdir=Path("."))
        dag_api = workflow_api.dag(DAGSettings(targets={target}, forceall=True))
        workflow = dag_api.workflow_api._workflow
        workflow._prepare_dag(forceall=True, ignore_incomplete=True, lock_warn_only=True, nolock=True)
        workflow._build_dag()
        lines = {}
        for job in workflow.dag.jobs:
            if not job.rule.norun:  # target rules (all, models_llama, ...) are never submitted
                lines.setdefault(job.rule.name, get_submit_command(job, params))
    print("SBATCH-LINES " + json.dumps(lines, sort_keys=True))
