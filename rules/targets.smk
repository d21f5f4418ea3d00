# Targets. all_<arch>: every job of that architecture's families up to its aggregated report;
# all / demo: every family plus the cross-family comparison; <stage>_<arch> and <stage>:
# stop after one stage (models, shards, checkpoints, exports, evals).
from morphcpt.layout import ARCHS, STAGES


rule all:
    default_target: True
    input:
        layout.family_outputs(layout.families),
        layout.comparison(),
        layout.comparison_page(),


rule demo:
    input:
        rules.all.input,


for _arch in ARCHS:

    rule:
        name:
            f"all_{_arch}"
        input:
            layout.family_outputs(layout.families_of_arch(_arch)),


for _stage in STAGES:
    for _arch in ARCHS:

        rule:
            name:
                f"{_stage}_{_arch}"
            input:
                layout.stage_outputs(_stage, layout.families_of_arch(_arch)),

    rule:
        name:
            _stage
        input:
            layout.stage_outputs(_stage, layout.families),
