"""Compare benchmark reports side by side: one column per report, deltas against a baseline.

The input is report JSON (`edgekit.report/1`) as `edgekit bench` writes it.
Compare reads only the keys it shows and treats every optional part as
possibly absent (a host run has no arena, a float model no `bit_exact`, an
older report no `device` block): a missing value is shown as `-`, and a row
that no report has is left out. The same `Comparison` renders as a text
table, JSON or a self-contained HTML page.

    sources     report files, or the registry's benchmark runs -> report dicts
    table       report dicts -> Comparison (rows, values, deltas against a baseline)
    stats       bootstrap confidence intervals of latency deltas; which latencies compare
    layout      Comparison -> View (wide or grouped rows) -> text or Markdown
    gates       --fail-on rules checked against a Comparison
    charts      matplotlib figures as inline SVG
    page        Comparison -> one self-contained HTML page
    formatting  numbers, sizes and aligned tables, also used by the CLI's other tables
"""

from edgekit.compare.formatting import format_bytes, format_number, format_relative, format_table
from edgekit.compare.page import render_html, write_text_atomic
from edgekit.compare.sources import REPORT_SCHEMA, compare_files, load_report
from edgekit.compare.layout import GROUP_FIELDS, LAYOUTS, build_view, render_markdown, render_text
from edgekit.compare.table import (
    HEADER_FIELDS,
    METRICS,
    Column,
    Comparison,
    Delta,
    Metric,
    Row,
    compare,
    header_of,
)

__all__ = [
    "GROUP_FIELDS", "LAYOUTS", "build_view", "render_markdown", "HEADER_FIELDS", "METRICS", "REPORT_SCHEMA", "Column", "Comparison", "Delta", "Metric", "Row",
    "compare", "compare_files", "format_bytes", "format_number", "format_relative", "format_table",
    "header_of", "load_report", "render_html", "render_text", "write_text_atomic",
]
