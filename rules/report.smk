# Stage: tables and plots. aggregate: one family's scores over mode x step x benchmark;
# compare: every family side by side (each mode's gain over vanilla, per family).
# The report code is an input: editing it rebuilds the tables (cheap), never the evaluations.

REPORT_SOURCES = [str(Path(workflow.basedir) / "src" / "morphcpt" / "evaluation" / "report.py")]


rule aggregate:
    input:
        results=lambda wc: layout.stage_outputs("evals", [wc.family]),
        code=REPORT_SOURCES,
    output:
        csv=layout.family_report()[0],
        md=layout.family_report()[1],
        plot=layout.family_report()[2],
    log:
        layout.log("aggregate", "{family}"),
    threads: 1
    resources:
        **rule_resources("aggregate"),
        out_mb=out_mb("aggregate"),
    conda:
        CPU_ENV
    script:
        "../workflow/scripts/aggregate.py"


rule compare:
    input:
        reports=[layout.family_report(f)[0] for f in layout.families],
        code=REPORT_SOURCES,
    output:
        csv=layout.comparison()[0],
        md=layout.comparison()[1],
        plot=layout.comparison()[2],
    log:
        layout.log("compare"),
    threads: 1
    resources:
        **rule_resources("compare"),
        out_mb=out_mb("compare"),
    conda:
        CPU_ENV
    script:
        "../workflow/scripts/compare.py"
