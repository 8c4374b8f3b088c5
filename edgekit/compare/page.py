"""The comparison as one self-contained HTML page: the table, the gates, charts, provenance.

Everything is inline (CSS, the charts as SVG), there is no script, and no
address points outside the page, so it opens from a file with no network and
no server, and survives being attached to a CI run or mailed.
"""

from __future__ import annotations

import html
import os
import tempfile
from pathlib import Path

from edgekit.compare import gates
from edgekit.compare.layout import Block, Cell, build_view
from edgekit.compare.table import Comparison
from edgekit.errors import EdgekitError

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem; color: #1d1d1f; }
h1 { font-size: 1.3rem; }
h2 { font-size: 1.1rem; margin-top: 2rem; }
h3 { font-size: 0.95rem; margin: 1.2rem 0 0.4rem; }
table { border-collapse: collapse; font-size: 0.8rem; }
th, td { padding: 0.25rem 0.5rem; border-bottom: 1px solid #ddd; text-align: right; white-space: nowrap; }
th.text, td.text { text-align: left; }
thead th { background: #f3f3f5; vertical-align: bottom; }
thead tr.facts th { font-weight: normal; color: #555; }
th.baseline, td.baseline { background: #fafaf0; }
.delta { color: #666; font-size: 0.85em; }
table.wide .delta { display: block; }
.better { color: #137333; }
.worse { color: #b3261e; }
.muted { color: #888; }
.scroll { overflow-x: auto; }
p.note, ul.notes { color: #666; font-size: 0.85rem; }
figure.chart { margin: 1rem 0 2rem; }
figure.chart svg { max-width: 100%; height: auto; display: block; }
figure.chart figcaption { font-weight: 600; margin-bottom: 0.3rem; }
table.provenance td { text-align: left; white-space: normal; vertical-align: top; }
table.provenance td.hash { font-family: ui-monospace, monospace; font-size: 0.8rem; }
li.broken { color: #b3261e; }
"""


def _cell_html(cell: Cell, tag: str, classes: list[str]) -> str:
    esc = html.escape
    text = esc(cell.text)
    if cell.delta is not None:
        tone = f" {cell.tone}" if cell.tone else ""
        text += f' <span class="delta{tone}">({esc(cell.delta)})</span>'
    elif cell.tone:
        text = f'<span class="{cell.tone}">{text}</span>'
    attr = f' class="{" ".join(classes)}"' if classes else ""
    return f"<{tag}{attr}>{text}</{tag}>"


def _block_html(block: Block, layout: str) -> list[str]:
    def classes(j: int) -> list[str]:
        found = ["text"] if j < block.left_columns else []
        return found + (["baseline"] if j == block.baseline_column else [])

    out = []
    if block.title:
        out.append(f"<h3>{html.escape(block.title)}</h3>")
    out.append(f'<div class="scroll"><table class="{layout}"><thead>')
    for n, header in enumerate(block.header):
        out.append('<tr class="facts">' if n else "<tr>")
        out += [_cell_html(Cell(text), "th", classes(j)) for j, text in enumerate(header)]
        out.append("</tr>")
    out.append("</thead><tbody>")
    for row in block.rows:
        out.append("<tr>")
        out += [_cell_html(cell, "td", classes(j)) for j, cell in enumerate(row)]
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return out


def _gates_html(outcomes: list[gates.Outcome]) -> list[str]:
    esc = html.escape
    broken = sum(o.status == "broken" for o in outcomes)
    out = ["<h2>Gates</h2>",
           f'<p class="{"worse" if broken else "better"}">{broken} broken of {len(outcomes)} checks</p>', "<ul>"]
    for head, items in gates.grouped(outcomes):
        out.append(f"<li>{esc(head)}<ul>")
        out += [f'<li class="{"broken" if status == "broken" else "muted"}"><b>{esc(status)}</b>: {esc(text)}</li>'
                for status, text in items]
        out.append("</ul></li>")
    out.append("</ul>")
    return out


def _short(digest) -> str:
    return html.escape(str(digest)[:12]) if digest else "-"


def provenance(report: dict) -> dict[str, str]:
    """What a reader needs to reproduce a report: the model and artifact hashes, toolchain, environment."""
    model = report.get("model") if isinstance(report.get("model"), dict) else {}
    artifact = report.get("artifact") if isinstance(report.get("artifact"), dict) else {}
    env = report.get("env") if isinstance(report.get("env"), dict) else {}
    packages = env.get("packages") if isinstance(env.get("packages"), dict) else {}
    toolchain = [f"edgekit {env['edgekit']}"] if env.get("edgekit") else []
    toolchain += [f"{name} {version}" for name, version in packages.items()]
    where = [str(env[k]) for k in ("cpu", "machine") if env.get(k)]
    if env.get("cores"):
        where.append(f"{env['cores']} cores")
    if env.get("threads"):
        where.append(f"{env['threads']} threads")
    for key in ("os", "python"):
        if env.get(key):
            where.append(f"{key} {env[key]}")
    return {
        "model": model.get("sha256"),
        "artifact": artifact.get("sha256"),
        "recipe": artifact.get("recipe_key"),
        "toolchain": ", ".join(toolchain) or "-",
        "environment": ", ".join(where) or "-",
        "created": str(report.get("created_at") or "-"),
    }


def _provenance_html(comparison: Comparison) -> list[str]:
    esc = html.escape
    out = ["<h2>Provenance</h2>", '<div class="scroll"><table class="provenance"><thead><tr>',
           *(f'<th class="text">{h}</th>' for h in
             ("report", "model sha256", "artifact sha256", "recipe key", "toolchain", "environment", "created")),
           "</tr></thead><tbody>"]
    for column, report in zip(comparison.columns, comparison.reports):
        facts = provenance(report)
        out.append("<tr>")
        out.append(f'<td title="{esc(column.path)}">{esc(column.label)}<br>'
                   f'<span class="muted">{esc(column.header["model"])}, {esc(column.header["backend"])}, '
                   f'{esc(column.header["runner"])}</span></td>')
        for key in ("model", "artifact", "recipe"):
            out.append(f'<td class="hash" title="{esc(str(facts[key] or ""))}">{_short(facts[key])}</td>')
        out += [f"<td>{esc(facts[key])}</td>" for key in ("toolchain", "environment", "created")]
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return out


def render_html(comparison: Comparison, title: str = "edgekit report comparison", *, layout: str = "auto",
                by: str | None = None, outcomes: list[gates.Outcome] | None = None,
                charts: bool = True) -> str:
    """A self-contained page: inline CSS and SVG, no scripts, no external assets."""
    esc = html.escape
    view = build_view(comparison, layout, by)
    body = [f"<h1>{esc(title)}</h1>",
            f'<p class="note">{len(comparison.columns)} reports, '
            f"baseline {esc(comparison.columns[comparison.baseline].label)}.</p>"]
    for block in view.blocks:
        body += _block_html(block, view.layout)
    body.append('<ul class="notes">' + "".join(f"<li>{esc(n)}</li>" for n in view.notes) + "</ul>")
    if outcomes:
        body += _gates_html(outcomes)
    if charts:
        from edgekit.compare import charts as drawing

        body.append("<h2>Charts</h2>")
        for name, caption, draw in drawing.CHARTS:
            body.append(f'<figure class="chart" data-chart="{name}"><figcaption>{esc(caption)}</figcaption>'
                        f"{draw(comparison)}</figure>")
    body += _provenance_html(comparison)
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{esc(title)}</title>",
        f"<style>{_CSS}</style>",
        "</head><body>",
        *body,
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

