"""The debug result as one self-contained page: the table and a chart of error by depth.

Offline by construction: inline CSS, the chart drawn by matplotlib as static
SVG inside the page, no scripts and no external assets (the compare page is
built the same way).
"""

from __future__ import annotations

import html
import io
import math
import re

from edgekit._lazy import require
from edgekit.debug.debugger import DebugResult
from edgekit.debug.table import COLUMNS, cells, header_lines, verdict_lines

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
h1 { font-size: 1.3rem; }
table { border-collapse: collapse; font-size: 0.85rem; }
th, td { padding: 0.3rem 0.7rem; border-bottom: 1px solid #ddd; text-align: right; white-space: nowrap; }
th:nth-child(2), td:nth-child(2), th:nth-child(3), td:nth-child(3) { text-align: left; }
thead th { background: #f3f3f5; }
tr.failed td { background: #fdecea; }
tr.first td { font-weight: bold; }
p.facts, ul.verdict { color: #444; font-size: 0.9rem; }
.chart svg { max-width: 100%; height: auto; }
"""


def error_chart_svg(result: DebugResult) -> str:
    """Relative L2 error (log scale) by depth, failing layers in red, as an inline <svg>."""
    require("matplotlib", "charts")
    import matplotlib
    from matplotlib.figure import Figure

    matplotlib.rcParams["svg.hashsalt"] = "edgekit-debug"  # the same page for the same result
    matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text: small, searchable
    rows = [r for r in result.rows if r.errors.rel_l2 > 0 and math.isfinite(r.errors.rel_l2)]
    figure = Figure(figsize=(max(6.0, 0.45 * len(result.rows) + 2), 3.6))
    axes = figure.subplots()
    if rows:
        axes.plot([r.depth for r in rows], [r.errors.rel_l2 for r in rows], color="#1a73e8", marker="o", lw=1.5)
        failed = [r for r in rows if r.failed]
        if failed:
            axes.scatter([r.depth for r in failed], [r.errors.rel_l2 for r in failed], color="#b3261e", zorder=3,
                         s=60, label="beyond tolerance")  # fmt: skip
            axes.legend(loc="upper left", frameon=False)
        axes.set_yscale("log")
    axes.set_xticks([r.depth for r in result.rows], [r.layer for r in result.rows], rotation=45, ha="right",
                    fontsize=8)  # fmt: skip
    axes.set_xlabel("layer (depth)")
    axes.set_ylabel("relative L2 error")
    axes.grid(True, which="major", alpha=0.3)
    figure.tight_layout()
    out = io.StringIO()
    figure.savefig(out, format="svg", metadata={"Date": None})
    svg = out.getvalue()
    svg = svg[svg.index("<svg") :]  # drop the XML prolog and doctype: the page is HTML
    return re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)  # RDF credits, not the chart


def render_html(result: DebugResult, title: str = "edgekit layer-by-layer fidelity") -> str:
    esc = html.escape
    first = result.first_failure
    head = "".join(f"<th>{esc(c)}</th>" for c in COLUMNS)
    body = []
    for row in result.rows:
        classes = " ".join(c for c, on in (("failed", row.failed), ("first", row is first)) if on)
        attr = f' class="{classes}"' if classes else ""
        body.append(f"<tr{attr}>" + "".join(f"<td>{esc(c)}</td>" for c in cells(row)) + "</tr>")
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head><body>",
        f"<h1>{esc(title)}</h1>",
        *[f'<p class="facts">{esc(line)}</p>' for line in header_lines(result)],
        '<div class="chart">', error_chart_svg(result), "</div>",
        "<table>", f"<thead><tr>{head}</tr></thead>", "<tbody>", *body, "</tbody>", "</table>",
        '<ul class="verdict">', *[f"<li>{esc(line)}</li>" for line in verdict_lines(result)], "</ul>",
        "</body></html>",
        "",
    ])  # fmt: skip
