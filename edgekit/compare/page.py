"""The comparison as one self-contained HTML page."""

from __future__ import annotations

import html
import os
import tempfile
from pathlib import Path

from edgekit.compare.formatting import format_relative
from edgekit.compare.table import HEADER_FIELDS, Comparison
from edgekit.errors import EdgekitError

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem; color: #1d1d1f; }
h1 { font-size: 1.3rem; }
table { border-collapse: collapse; font-size: 0.9rem; }
th, td { padding: 0.35rem 0.8rem; border-bottom: 1px solid #ddd; text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
thead th { background: #f3f3f5; vertical-align: bottom; }
thead tr.facts th { font-weight: normal; color: #555; }
th.baseline, td.baseline { background: #fafaf0; }
.delta { color: #666; font-size: 0.85em; }
.better { color: #137333; }
.worse { color: #b3261e; }
p.note { color: #666; font-size: 0.85rem; }
"""


def render_html(comparison: Comparison, title: str = "edgekit report comparison") -> str:
    """A self-contained page: inline CSS, no scripts, no external assets."""
    esc = html.escape
    cols = comparison.columns
    base = comparison.baseline

    def cls(i: int) -> str:
        return ' class="baseline"' if i == base else ""

    head = ["<tr><th>report</th>"]
    head += [
        f'<th{cls(i)} title="{esc(c.path)}">{esc(c.label)}{" (baseline)" if i == base else ""}</th>'
        for i, c in enumerate(cols)
    ]
    head.append("</tr>")
    for key in HEADER_FIELDS:
        head.append(f'<tr class="facts"><th>{esc(key)}</th>')
        head += [f"<th{cls(i)}>{esc(c.header[key])}</th>" for i, c in enumerate(cols)]
        head.append("</tr>")

    body = []
    for row in comparison.rows:
        body.append(f"<tr><td>{esc(row.metric.label)}</td>")
        for i, value in enumerate(row.values):
            cell = esc(row.metric.format(value))
            delta = row.deltas[i]
            if delta is not None:
                parts = ["="] if delta.absolute == 0 else [row.metric.format_delta(delta.absolute)]
                if delta.absolute != 0 and delta.relative is not None:
                    parts.append(format_relative(delta.relative))
                tone = {True: " better", False: " worse", None: ""}[delta.better]
                cell += f' <span class="delta{tone}">({esc(", ".join(parts))})</span>'
            body.append(f"<td{cls(i)}>{cell}</td>")
        body.append("</tr>")

    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head><body>",
        f"<h1>{esc(title)}</h1>",
        "<table>",
        "<thead>", *head, "</thead>",
        "<tbody>", *body, "</tbody>",
        "</table>",
        f'<p class="note">Deltas are against the baseline column ({esc(cols[base].label)}): '
        "absolute, then relative. Green is better, red is worse. "
        "A dash means the report does not have that value.</p>",
        "</body></html>",
        "",
    ])


def write_text_atomic(path: Path, text: str) -> None:
    """Write a file whole or not at all (a temp file in the same folder, then rename)."""
    path = Path(path)
    if not path.parent.is_dir():
        raise EdgekitError(f"{path}: folder {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        # mkstemp makes the file private; give it the permissions a plain open() would
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise

