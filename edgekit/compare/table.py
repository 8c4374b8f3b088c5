"""The comparison itself: which rows to show, the values each report has, deltas against a baseline.

Latency rows carry more than a subtraction: each delta gets a bootstrap
confidence interval from the stored samples (edgekit.compare.stats), and a
pair of reports whose latencies were measured on different machines or
clocks gets no delta at all, only the reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from edgekit.compare import stats
from edgekit.compare.formatting import format_bytes, format_number, format_relative
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
    #: the target descriptor's key holding the budget this value is measured against
    budget: str | None = None

    @property
    def latency(self) -> bool:
        """Measured by a clock: only comparable between reports timed on the same machine and clock."""
        return self.key.startswith("latency_ms.") or self.key == "throughput_ips"
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


    def budget_of(self, report: dict) -> float | None:
        """The target's budget for this value (flash or RAM bytes), when the target states one."""
        target = report.get("target")
        # a host's RAM is the machine's, not a budget the model was built to fit
        if self.budget is None or not isinstance(target, dict) or target.get("kind") == "host":
            return None
        budget = target.get(self.budget)
        if isinstance(budget, bool) or not isinstance(budget, (int, float)) or budget <= 0:
            return None
        return budget


METRICS: tuple[Metric, ...] = (
    Metric("latency_ms.p50", "latency p50 (ms)", "ms"),
    Metric("latency_ms.p90", "latency p90 (ms)", "ms"),
    Metric("latency_ms.p99", "latency p99 (ms)", "ms"),
    Metric("latency_ms.mean", "latency mean (ms)", "ms"),
    Metric("latency_ms.source", "latency measured on", "text", None),
    Metric("throughput_ips", "throughput (inf/s)", "ips", lower_is_better=False),
    Metric("accuracy.value", "accuracy", "fraction", lower_is_better=False),
    Metric("fidelity.max_abs_err", "max abs error", "value"),
    Metric("fidelity.mean_abs_err", "mean abs error", "value"),
    Metric("fidelity.cosine", "cosine similarity", "ratio", lower_is_better=False),
    Metric("fidelity.argmax_agreement", "argmax agreement", "fraction", lower_is_better=False),
    Metric("fidelity.bit_exact", "bit exact", "bool", None),
    Metric("fidelity.mismatches", "mismatches", "count"),
    Metric("memory.flash_bytes", "flash", "bytes", budget="flash_bytes"),
    Metric("memory.ram_bytes", "RAM", "bytes", budget="ram_bytes"),
    Metric("memory.arena_bytes", "arena", "bytes", budget="ram_bytes"),
    Metric("memory.stack_bytes", "stack", "bytes"),
    # what a host runner added for loading and running the model
    Metric("memory.model_rss_bytes", "model RSS", "bytes"),
    # older reports: the whole benchmarking process (TensorFlow included), never the model's footprint
    Metric("memory.peak_rss_bytes", "process peak RSS", "bytes"),
    Metric("device.instructions", "device instructions", "count"),
    Metric("device.cycles", "device cycles", "count"),
    Metric("device.cycles_estimate", "device cycles (estimate)", "count"),
)
METRICS_BY_KEY = {m.key: m for m in METRICS}


def metric(key: str) -> Metric:
    return METRICS_BY_KEY[key]


# --------------------------------------------------------------- comparison


@dataclass
class Delta:
    """A value's change against the baseline's.

    `not_comparable` (a reason) replaces the numbers for latencies measured on
    another machine or clock; `interval` is the bootstrap confidence interval
    where both reports stored enough samples.
    """

    absolute: float | None
    relative: float | None  # fraction; None when the baseline is 0
    better: bool | None  # None: equal, or the metric has no direction
    interval: stats.Interval | None = None
    not_comparable: str | None = None

    @property
    def significant(self) -> bool | None:
        """True or False where an interval exists; None where there is nothing to judge by."""
        return None if self.interval is None else self.interval.significant

    def to_json(self) -> dict:
        if self.not_comparable:
            return {"comparable": False, "reason": self.not_comparable}
        data = {"absolute": self.absolute, "relative": self.relative, "better": self.better}
        if self.interval is not None:
            data["ci"] = self.interval.to_json()
        return data

    def text(self, metric: Metric) -> str:
        """`-0.190, -31%`, with the interval where there is one."""
        if self.not_comparable:
            return "not comparable"
        if self.absolute == 0 and self.interval is None:
            return "="
        parts = [metric.format_delta(self.absolute)]
        if self.relative is not None:
            parts.append(format_relative(self.relative))
        if self.interval is not None:
            parts.append(f"CI {interval_text(metric, self.interval)}")
            if not self.interval.significant:
                parts.append("no significant change")
        return ", ".join(parts)

    @property
    def tone(self) -> str | None:
        """How to colour it: better / worse only when the change is real."""
        if self.not_comparable:
            return "muted"
        if self.interval is not None and not self.interval.significant:
            return "muted"
        return {True: "better", False: "worse", None: None}[self.better]


def interval_text(metric: Metric, interval: stats.Interval) -> str:
    if interval.relative_low is not None and metric.relative:
        return f"{format_relative(interval.relative_low)}..{format_relative(interval.relative_high)}"
    return f"{metric.format_delta(interval.low)}..{metric.format_delta(interval.high)}"


@dataclass
class Row:
    metric: Metric
    values: list[Any]
    deltas: list[Delta | None]  # None for the baseline column and missing values
    budgets: list[float | None]
    label: str = ""

    def __post_init__(self):
        self.label = self.label or self.metric.label

    def value_text(self, i: int) -> str:
        text = self.metric.format(self.values[i])
        share = self.share(i)
        return text if share is None else f"{text} ({format_share(share)})"

    def share(self, i: int) -> float | None:
        """The value as a fraction of its budget, where the target has one."""
        value, budget = self.values[i], self.budgets[i]
        return None if value is None or budget is None else value / budget

    def cell(self, i: int) -> str:
        text = self.value_text(i)
        delta = self.deltas[i]
        return text if delta is None else f"{text} ({delta.text(self.metric)})"


def format_share(share: float) -> str:
    percent = share * 100
    if 0 < percent < 0.1:
        return "<0.1%"
    return f"{percent:.0f}%" if percent >= 10 else f"{percent:.1f}%"


@dataclass
class Column:
    label: str  # the report's file name (or registry run)
    path: str
    header: dict[str, str]


@dataclass
class Comparison:
    columns: list[Column]
    rows: list[Row]
    baseline: int
    reports: list[dict] = field(default_factory=list)
    #: per column: why its latency cannot be compared with the baseline's (None: it can)
    not_comparable: list[str | None] = field(default_factory=list)

    def row(self, key: str) -> Row | None:
        return next((r for r in self.rows if r.metric.key == key), None)

    def to_json(self) -> dict:
        return {
            "baseline": self.baseline,
            "columns": [
                {"report": c.label, "path": c.path, **c.header,
                 "latency_comparable": self.not_comparable[i] is None if self.not_comparable else True,
                 **({"not_comparable": self.not_comparable[i]} if self.not_comparable and self.not_comparable[i] else {})}
                for i, c in enumerate(self.columns)
            ],
            "rows": [
                {
                    "key": row.metric.key,
                    "label": row.label,
                    "unit": row.metric.unit,
                    "values": row.values,
                    "budgets": row.budgets,
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
    base_report = reports[baseline]
    not_comparable = [
        None if i == baseline else stats.comparability(base_report, r) for i, r in enumerate(reports)
    ]
    # resampled once per report, then shared by every latency row
    boots = [None if reason and i != baseline else stats.bootstrap(stats.samples_of(r))
             for i, (r, reason) in enumerate(zip(reports, not_comparable))]
    rows = []
    for m in METRICS:
        values = [m.value(r) for r in reports]
        if all(v is None for v in values):
            continue
        base = values[baseline]
        deltas = []
        for i, value in enumerate(values):
            if i == baseline:
                deltas.append(None)
            elif m.latency and m.numeric and not_comparable[i] and value is not None:
                deltas.append(Delta(None, None, None, not_comparable=not_comparable[i]))
            else:
                delta = _delta(m, base, value)
                if delta is not None and m.latency:
                    delta.interval = stats.delta_interval(m.key, boots[baseline], boots[i])
                deltas.append(delta)
        rows.append(Row(m, values, deltas, [m.budget_of(r) for r in reports], _label(m, reports)))
    return Comparison(columns, rows, baseline, list(reports), not_comparable)


def _label(m: Metric, reports: list[dict]) -> str:
    """The accuracy row is named after the task's metric (top-1 for classifiers)."""
    if m.key != "accuracy.value":
        return m.label
    names = {r["accuracy"].get("metric") for r in reports if isinstance(r.get("accuracy"), dict)}
    names.discard(None)
    if names == {"top1"}:
        return "top-1 accuracy"
    return f"accuracy ({', '.join(sorted(map(str, names)))})" if names else m.label


def _delta(m: Metric, base: Any, value: Any) -> Delta | None:
    if not m.numeric or base is None or value is None:
        return None
    absolute = value - base
    relative = absolute / abs(base) if base != 0 and m.relative else None
    if absolute == 0 or m.lower_is_better is None:
        better = None
    else:
        better = (absolute < 0) == m.lower_is_better
    return Delta(absolute, relative, better)
