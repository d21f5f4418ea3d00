"""A Markdown table page as one self-contained HTML file, for Snakemake's report (which shows HTML,
images and PDFs in the browser and offers every other file only as a download)."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from morphcpt.fileio import write_text_atomic

STYLE = """body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:0.8em 0;font-size:0.9em}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f2f2f2} tr:nth-child(even) td{background:#fafafa} code{background:#f4f4f4}"""


def markdown_page(markdown_text: str, title: str) -> str:
    import markdown

    body = markdown.markdown(markdown_text, extensions=["tables"], output_format="html")
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{STYLE}</style></head><body>\n{body}\n</body></html>\n")


def render_markdown_file(md_path: str | Path, html_path: str | Path, title: str) -> None:
    write_text_atomic(html_path, markdown_page(Path(md_path).read_text(encoding="utf-8"), title))


def markdown_pages_stage(smk: Any) -> None:
    """Rules that show Markdown tables in the report: input md, output html (in order), params titles."""
    for md, out, title in zip(smk.input.md, smk.output.html, smk.params.titles, strict=True):
        render_markdown_file(md, out, title)
        print(f"markdown page: {md} -> {out}")
