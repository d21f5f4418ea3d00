# Stage: tables and plots. aggregate: one family's scores over mode x step x benchmark;
# compare: every family side by side (each mode's gain over vanilla, per family).
# The report code is an input: editing it rebuilds the tables (cheap), never the evaluations.

REPORT_SOURCES = [
    str(Path(workflow.basedir) / "src" / "morphcpt" / "evaluation" / f)
    for f in ("report.py", "report_tables.py", "report_plots.py")
]

# Snakemake's HTML report (`snakemake --report report.html`, `make report`): the outputs marked
# report(...) below, one category per stage, one subcategory per family, a caption each.
report: "../workflow/report/workflow.rst"

MARKDOWN_PAGE_SOURCES = reporting_sources("html_page")


rule aggregate:
    input:
        results=lambda wc: layout.stage_outputs("evals", [wc.family]),
        code=REPORT_SOURCES,
    output:
        csv=in_report(layout.family_report()[0], "scores_table", "3. Evaluation", "scores (CSV)"),
        md=in_report(layout.family_report()[1], "scores_table", "3. Evaluation", "scores (Markdown)"),
        plot=in_report(layout.family_report()[2], "scores_plot", "3. Evaluation", "scores vs step (plot)"),
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
        csv=in_report(layout.comparison()[0], "comparison_table", "4. Comparison", "comparison (CSV)", "all"),
        md=in_report(layout.comparison()[1], "comparison_table", "4. Comparison", "comparison (Markdown)", "all"),
        plot=in_report(layout.comparison()[2], "comparison_plot", "4. Comparison", "comparison (plot)", "all"),
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


# The HTML pages of the two Markdown tables above (the report shows HTML in the browser; .md and
# .csv only as downloads).
rule scores_page:
    input:
        md=[layout.family_report()[1]],
        code=MARKDOWN_PAGE_SOURCES,
    output:
        html=[in_report(layout.scores_page(), "scores_table", "3. Evaluation", "scores (table)")],
    params:
        titles=lambda wc: [f"Scores: {wc.family}"],
    log:
        layout.log("scores_page", "{family}"),
    threads: 1
    resources:
        **rule_resources("scores_page"),
        out_mb=out_mb("scores_page"),
    conda:
        CPU_ENV
    script:
        "../workflow/scripts/markdown_pages.py"


rule comparison_page:
    input:
        md=[layout.comparison()[1]],
        code=MARKDOWN_PAGE_SOURCES,
    output:
        html=[in_report(layout.comparison_page(), "comparison_table", "4. Comparison", "comparison (table)", "all")],
    params:
        titles=["Cross-family comparison"],
    log:
        layout.log("comparison_page"),
    threads: 1
    resources:
        **rule_resources("comparison_page"),
        out_mb=out_mb("comparison_page"),
    conda:
        CPU_ENV
    script:
        "../workflow/scripts/markdown_pages.py"


# Training curves of a family from every mode's metrics.jsonl/runs.jsonl (read next to the declared
# metrics.json): loss and learning rate vs tokens seen, checkpoints, step-0 reference, resumes.
rule training_curves:
    input:
        metrics=lambda wc: [layout.train_metrics(wc.family, m) for m in layout.modes],
        code=reporting_sources("training_curves", "training_log"),
    output:
        png=in_report(layout.training_curves()[0], "training_curves", "2. Training", "training curves (plot)"),
        csv=in_report(layout.training_curves()[1], "training_curves", "2. Training", "training curves (CSV)"),
    params:
        modes=layout.modes,
    log:
        layout.log("training_curves", "{family}"),
    threads: 1
    resources:
        **rule_resources("training_curves"),
        out_mb=out_mb("training_curves"),
    conda:
        CPU_ENV
    script:
        "../workflow/scripts/training_curves.py"


# Run summary of a family: every gate's verdict and numbers, training per mode, software, logs.
rule run_summary:
    input:
        import_parity=layout.import_parity(),
        metrics=lambda wc: [layout.train_metrics(wc.family, m) for m in layout.modes],
        export_parity=lambda wc: [layout.export_parity(wc.family, m, s) for m in layout.modes for s in layout.steps],
        code=reporting_sources("run_summary", "training_log", "html_page"),
    output:
        md=in_report(layout.run_summary()[0], "run_summary", "1. Gates and run summary", "run summary (Markdown)"),
        csv=in_report(layout.run_summary()[1], "run_summary", "1. Gates and run summary", "run summary (CSV)"),
        html=in_report(layout.run_summary()[2], "run_summary", "1. Gates and run summary", "run summary (table)"),
    log:
        layout.log("run_summary", "{family}"),
    threads: 1
    resources:
        **rule_resources("run_summary"),
        out_mb=out_mb("run_summary"),
    conda:
        CPU_ENV
    script:
        "../workflow/scripts/run_summary.py"
