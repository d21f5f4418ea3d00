"""Markdown tables as a self-contained HTML page (the report shows HTML, not Markdown)."""

from morphcpt.reporting.html_page import markdown_page, render_markdown_file


def test_table_page_is_self_contained_and_escaped(tmp_path):
    md = tmp_path / "t.md"
    md.write_text("# Scores <x>\n\n| mode | acc |\n|---|---:|\n| vanilla | 0.25 ± 0.04 |\n", encoding="utf-8")
    render_markdown_file(md, tmp_path / "out" / "t.html", "Scores: a<b")
    page = (tmp_path / "out" / "t.html").read_text(encoding="utf-8")
    assert "<title>Scores: a&lt;b</title>" in page and '<meta charset="utf-8">' in page
    assert "<th>mode</th>" in page and "<td>vanilla</td>" in page and "0.25 ± 0.04" in page
    assert "<link" not in page and "<script" not in page  # nothing to fetch


def test_without_a_table_there_is_no_table():
    assert "<table>" not in markdown_page("| not a table", "x")
