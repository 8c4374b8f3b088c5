"""The comparison itself: which rows to show, the values each report has, deltas against a baseline."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from edgekit.compare.formatting import format_bytes, format_number, format_relative, format_table
from edgekit.errors import EdgekitError

#: the facts that tell the columns apart, shown above the metrics
HEADER_FIELDS = ("model", "target", "backend", "quantization", "runner")

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


# ---------------------------------------------------------------- rendering


def render_text(comparison: Comparison) -> str:
    cols = comparison.columns
    base = comparison.baseline
    title = ["report", *(f"{c.label} (baseline)" if i == base else c.label for i, c in enumerate(cols))]
    rows = [title]
    rows += [[key, *(c.header[key] for c in cols)] for key in HEADER_FIELDS]
    rows += [[row.metric.label, *(row.cell(i) for i in range(len(cols)))] for row in comparison.rows]
    return format_table(rows, header_rows=1 + len(HEADER_FIELDS))


