"""The report stage beyond the evaluation tables: training curves, run summaries, and the HTML pages
that Snakemake's own report (`snakemake --report report.html`) shows (docs/design.md §2)."""
