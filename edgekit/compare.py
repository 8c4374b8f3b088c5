"""Compare benchmark reports side by side: one column per report, deltas against a baseline.

The input is report JSON (`edgekit.report/1`) as `edgekit bench` writes it.
Compare reads only the keys it shows and treats every optional part as
possibly absent (a host run has no arena, a float model no `bit_exact`, an
older report no `device` block): a missing value is shown as `-`, and a row
that no report has is left out. The same `Comparison` renders as a text
table, JSON or a self-contained HTML page.

Also home of the small formatters (`format_bytes`, `format_table`) that the
CLI's other tables use.
"""

from __future__ import annotations

import html
import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgekit.errors import EdgekitError

#: the report schema this module reads (written by edgekit.bench.report)
REPORT_SCHEMA = "edgekit.report/1"

#: the facts that tell the columns apart, shown above the metrics
HEADER_FIELDS = ("model", "target", "backend", "quantization", "runner")


# ------------------------------------------------------------- formatting


def format_bytes(n: float | None, *, signed: bool = False) -> str:
    """Binary units, exact where the size is whole: `640 KiB`, `1.5 MiB`, `-12.3 KiB`."""
    if n is None:
        return "-"
    sign = "-" if n < 0 else ("+" if signed and n > 0 else "")
    value = abs(float(n))
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            break
        value /= 1024
    if unit == "B":
        return f"{sign}{int(value)} B"
    text = f"{value:.0f}" if value == int(value) else f"{value:.1f}"
    return f"{sign}{text} {unit}"


def format_number(x: float, *, signed: bool = False) -> str:
    """A readable number: more decimals for small values, scientific for tiny errors."""
    plus = "+" if signed else ""
    if x == 0:
        return "0"
    if isinstance(x, int) or float(x).is_integer() and abs(x) >= 1000:
        return f"{x:{plus},.0f}"
    magnitude = abs(x)
    if magnitude < 1e-3:
        return f"{x:{plus}.3g}"
    if magnitude >= 1000:
        return f"{x:{plus},.0f}"
    if magnitude >= 100:
        return f"{x:{plus}.1f}"
    if magnitude >= 10:
        return f"{x:{plus}.2f}"
    # below 10: three significant digits (0.610, 0.0245), never fewer than 3 decimals
    decimals = max(3, 2 - math.floor(math.log10(magnitude)))
    return f"{x:{plus}.{decimals}f}"


def format_table(rows: list[list[str]], *, header_rows: int = 1, right_align_from: int = 1) -> str:
    """An aligned plain-text table; a rule under the header rows."""
    if not rows:
        return ""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]

    def line(row: list[str]) -> str:
        cells = [
            cell.rjust(width) if i >= right_align_from else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths))
        ]
        return "  ".join(cells).rstrip()

    out = [line(row) for row in rows[:header_rows]]
    if header_rows:
        out.append("  ".join("-" * w for w in widths))
    out += [line(row) for row in rows[header_rows:]]
    return "\n".join(out)


# ------------------------------------------------------------------ metrics


@dataclass(frozen=True)
class Metric:
    """One row: where its value lives in a report, how to show it, which way is better."""

    key: str  # dotted path into the report, e.g. "latency_ms.p50"
    label: str
    unit: str  # "ms", "ips", "bytes", "count", "ratio", "fraction", "value", "bool", "text"
    lower_is_better: bool | None = True  # None: no direction (text, flags)

    @property
    def relative(self) -> bool:
        # a relative change of an error near zero (+6,000,000%) or of a fraction
        # already in percent says nothing a reader can use: absolute change only
        return self.unit not in ("value", "fraction", "ratio")

    def value(self, report: dict) -> Any:
        node: Any = report
        for part in self.key.split("."):
            if not isinstance(node, dict):
                return None
            node = node.get(part)
        if self.unit in ("bool", "text"):
            return node
        if isinstance(node, bool) or not isinstance(node, (int, float)):
            return None  # absent or not a number: shown as '-'
        if isinstance(node, float) and not math.isfinite(node):
            return None
        return node

    @property
    def numeric(self) -> bool:
        return self.unit not in ("bool", "text")

    def format(self, value: Any) -> str:
        if value is None:
            return "-"
        if self.unit == "bool":
            return "yes" if value else "no"
        if self.unit == "text":
            return str(value)
        if self.unit == "bytes":
            return format_bytes(value)
        if self.unit in ("ratio",):
            return f"{value:.4f}"
        if self.unit == "fraction":
            return f"{value * 100:.2f}%"
        if self.unit == "count":
            return f"{int(value):,}"
        if self.unit == "value" and abs(value) < 1:
            return f"{value:.3g}"  # errors: keep three significant digits
        return format_number(value)

    def format_delta(self, delta: float) -> str:
        if self.unit == "bytes":
            return format_bytes(delta, signed=True)
        if self.unit == "ratio":
            return f"{delta:+.4f}"
        if self.unit == "fraction":
            return f"{delta * 100:+.2f} pt"
        if self.unit == "count":
            return f"{int(delta):+,}"
        if self.unit == "value" and abs(delta) < 1:
            return f"{delta:+.3g}"
        return format_number(delta, signed=True)


METRICS: tuple[Metric, ...] = (
    Metric("latency_ms.p50", "latency p50 (ms)", "ms"),
    Metric("latency_ms.p90", "latency p90 (ms)", "ms"),
    Metric("latency_ms.p99", "latency p99 (ms)", "ms"),
    Metric("latency_ms.mean", "latency mean (ms)", "ms"),
    Metric("latency_ms.source", "latency measured on", "text", None),
    Metric("throughput_ips", "throughput (inf/s)", "ips", lower_is_better=False),
    Metric("memory.peak_rss_bytes", "peak RSS", "bytes"),
    Metric("memory.arena_bytes", "arena", "bytes"),
    Metric("memory.flash_bytes", "flash", "bytes"),
    Metric("memory.ram_bytes", "RAM", "bytes"),
    Metric("accuracy.value", "accuracy", "fraction", lower_is_better=False),
    Metric("fidelity.max_abs_err", "max abs error", "value"),
    Metric("fidelity.mean_abs_err", "mean abs error", "value"),
    Metric("fidelity.cosine", "cosine similarity", "ratio", lower_is_better=False),
    Metric("fidelity.argmax_agreement", "argmax agreement", "fraction", lower_is_better=False),
    Metric("fidelity.bit_exact", "bit exact", "bool", None),
    Metric("fidelity.mismatches", "mismatches", "count"),
    Metric("device.instructions", "device instructions", "count"),
    Metric("device.cycles", "device cycles", "count"),
)


# --------------------------------------------------------------- comparison


@dataclass
class Delta:
    absolute: float
    relative: float | None  # fraction; None when the baseline is 0
    better: bool | None  # None: equal, or the metric has no direction

    def to_json(self) -> dict:
        return {"absolute": self.absolute, "relative": self.relative, "better": self.better}


@dataclass
class Row:
    metric: Metric
    values: list[Any]
    deltas: list[Delta | None]  # None for the baseline column and missing values

    def cell(self, i: int) -> str:
        text = self.metric.format(self.values[i])
        delta = self.deltas[i]
        if delta is None:
            return text
        if delta.absolute == 0:
            return f"{text} (=)"
        parts = [self.metric.format_delta(delta.absolute)]
        if delta.relative is not None:
            parts.append(format_relative(delta.relative))
        return f"{text} ({', '.join(parts)})"


@dataclass
class Column:
    label: str  # the report's file name
    path: str
    header: dict[str, str]


@dataclass
class Comparison:
    columns: list[Column]
    rows: list[Row]
    baseline: int

    def to_json(self) -> dict:
        return {
            "baseline": self.baseline,
            "columns": [
                {"report": c.label, "path": c.path, **c.header} for c in self.columns
            ],
            "rows": [
                {
                    "key": row.metric.key,
                    "label": row.metric.label,
                    "unit": row.metric.unit,
                    "values": row.values,
                    "deltas": [d.to_json() if d else None for d in row.deltas],
                }
                for row in self.rows
            ],
        }


def format_relative(fraction: float) -> str:
    if fraction >= 9:  # a board against a host: "3,958x" reads better than "+395,750%"
        return f"{1 + fraction:,.0f}x"
    percent = fraction * 100
    if abs(percent) >= 10 or percent == int(percent):
        return f"{percent:+.0f}%"
    if abs(percent) >= 1:
        return f"{percent:+.1f}%"
    return f"{percent:+.2f}%"


def load_report(path: Path) -> dict:
    """Read one report; a missing, non-JSON or foreign file is an error naming it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EdgekitError(f"{path}: no such report file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EdgekitError(f"{path}: cannot read the report ({exc})") from None
    try:
        report = json.loads(text)
    except ValueError as exc:
        raise EdgekitError(f"{path}: not JSON ({exc}); pass a report written by `edgekit bench`") from None
    schema = report.get("schema") if isinstance(report, dict) else None
    if schema != REPORT_SCHEMA:
        raise EdgekitError(
            f"{path}: not an edgekit report (schema {schema!r}, expected {REPORT_SCHEMA!r}); "
            "pass a report written by `edgekit bench`"
        )
    return report


def header_of(report: dict) -> dict[str, str]:
    """model / target / backend / quantization / runner, as short strings."""
    model = report.get("model")
    if isinstance(model, dict):
        name = str(model.get("name") or "-")
        version = model.get("version")
        model_text = f"{name} v{version}" if version not in (None, "") else name
    else:
        model_text = str(model) if model else "-"
    target = report.get("target")
    target_text = target.get("name") if isinstance(target, dict) else target
    header = {"model": model_text, "target": str(target_text or "-")}
    for key in ("backend", "quantization", "runner"):
        header[key] = str(report.get(key) or "-")
    return header


def compare(reports: list[dict], labels: list[str] | None = None, *, baseline: int = 0,
            paths: list[str] | None = None) -> Comparison:
    """Build the table: rows that at least one report has, deltas against `reports[baseline]`."""
    if not reports:
        raise EdgekitError("no reports to compare: pass at least one report file")
    if not 0 <= baseline < len(reports):
        raise EdgekitError(f"baseline index {baseline} is outside the {len(reports)} reports")
    labels = labels or [f"#{i + 1}" for i in range(len(reports))]
    paths = paths or labels
    columns = [Column(label, path, header_of(r)) for label, path, r in zip(labels, paths, reports)]
    rows = []
    for metric in METRICS:
        values = [metric.value(r) for r in reports]
        if all(v is None for v in values):
            continue
        base = values[baseline]
        deltas = [
            None if i == baseline else _delta(metric, base, value)
            for i, value in enumerate(values)
        ]
        rows.append(Row(metric, values, deltas))
    return Comparison(columns, rows, baseline)


def _delta(metric: Metric, base: Any, value: Any) -> Delta | None:
    if not metric.numeric or base is None or value is None:
        return None
    absolute = value - base
    relative = absolute / abs(base) if base != 0 and metric.relative else None
    if absolute == 0 or metric.lower_is_better is None:
        better = None
    else:
        better = (absolute < 0) == metric.lower_is_better
    return Delta(absolute, relative, better)


def compare_files(paths: list[Path], baseline: Path | None = None) -> Comparison:
    """Load report files and compare them; `baseline` joins the list (first) unless already in it."""
    paths = [Path(p) for p in paths]
    baseline_index = 0
    if baseline is not None:
        baseline = Path(baseline)
        matches = [i for i, p in enumerate(paths) if _same_file(p, baseline)]
        if matches:
            baseline_index = matches[0]
        else:
            paths = [baseline, *paths]
    reports = [load_report(p) for p in paths]
    return compare(reports, _labels(paths), baseline=baseline_index, paths=[str(p) for p in paths])


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return a == b


def _labels(paths: list[Path]) -> list[str]:
    """File names, or longer paths where two reports share a name."""
    names = [p.name for p in paths]
    return [p.name if names.count(p.name) == 1 else str(p) for p in paths]


# ---------------------------------------------------------------- rendering


def render_text(comparison: Comparison) -> str:
    cols = comparison.columns
    base = comparison.baseline
    title = ["report", *(f"{c.label} (baseline)" if i == base else c.label for i, c in enumerate(cols))]
    rows = [title]
    rows += [[key, *(c.header[key] for c in cols)] for key in HEADER_FIELDS]
    rows += [[row.metric.label, *(row.cell(i) for i in range(len(cols)))] for row in comparison.rows]
    return format_table(rows, header_rows=1 + len(HEADER_FIELDS))


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

