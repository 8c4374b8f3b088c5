"""The page's charts, drawn by matplotlib as static SVG inlined into the HTML.

Static SVG needs no script and no network to display, and matplotlib draws
it (axes, ticks, log scales, legends) rather than this code. matplotlib is
imported only when a page is written.

Each function returns one `<svg>` element as text, with what would make it a
standalone file (XML prolog, DOCTYPE, RDF metadata, namespace declarations)
removed: inside HTML the parser gives inline SVG its namespace itself, and
the page then carries no external address at all.
"""

from __future__ import annotations

import io
import math
import re

import numpy as np

from edgekit._lazy import require
from edgekit.compare.formatting import format_bytes
from edgekit.compare.stats import clock_of
from edgekit.compare.table import Comparison, format_share

_CLOCK_COLOURS = {"host": "#1f77b4", "device": "#d95f02"}
_STRIP = [
    re.compile(r"<\?xml[^>]*\?>\s*"),
    re.compile(r"<!DOCTYPE[^>]*>\s*"),
    re.compile(r"<metadata>.*?</metadata>\s*", re.S),
    re.compile(r'\s+xmlns(:\w+)?="[^"]*"'),
]


def _figure(width: float, height: float):
    require("matplotlib", "charts")
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _svg(fig) -> str:
    import matplotlib

    buffer = io.StringIO()
    # text stays text (smaller, selectable, uses the page's fonts); ids are stable across runs
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "edgekit"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    svg = buffer.getvalue()
    for pattern in _STRIP:
        svg = pattern.sub("", svg)
    return svg.strip()


def _height(rows: int) -> float:
    return 1.2 + 0.26 * rows


def _message(fig, text: str) -> None:
    ax = fig.subplots()
    ax.set_axis_off()
    ax.text(0.5, 0.5, text, ha="center", va="center", color="#666", transform=ax.transAxes)


def _log_scale_wanted(values: list[float]) -> bool:
    positive = [v for v in values if v and v > 0]
    return len(positive) > 1 and max(positive) / min(positive) > 30


# ------------------------------------------------------------------ latency


def latency(comparison: Comparison) -> str:
    """One box per report: the stored samples (or p50..p99 when a report kept none)."""
    labels = [c.label for c in comparison.columns]
    data, positions, colours, names = [], [], [], []
    for i, report in enumerate(comparison.reports):
        latency_block = report.get("latency_ms") if isinstance(report.get("latency_ms"), dict) else {}
        samples = [v for v in latency_block.get("samples") or [] if isinstance(v, (int, float))]
        if not samples:
            samples = [latency_block[k] for k in ("p50", "p90", "p99")
                       if isinstance(latency_block.get(k), (int, float))]
        if not samples:
            continue
        data.append(np.asarray(samples, dtype=float))
        positions.append(len(positions))
        colours.append(_CLOCK_COLOURS[clock_of(report)])
        names.append(labels[i] + (" *" if i == comparison.baseline else ""))
    fig = _figure(8.5, _height(max(len(data), 2)))
    if not data:
        _message(fig, "no report has latency samples")
        return _svg(fig)
    ax = fig.subplots()
    boxes = ax.boxplot(data, positions=positions, orientation="horizontal", widths=0.6, patch_artist=True,
                       showfliers=True, flierprops={"markersize": 2, "alpha": 0.4},
                       medianprops={"color": "black"})
    for patch, colour in zip(boxes["boxes"], colours):
        patch.set_facecolor(colour)
        patch.set_alpha(0.55)
    ax.set_yticks(positions, names)
    ax.invert_yaxis()  # the first report on top, as in the table
    if _log_scale_wanted([float(np.min(d)) for d in data] + [float(np.max(d)) for d in data]):
        ax.set_xscale("log")
    ax.set_xlabel("latency per inference (ms)")
    ax.grid(axis="x", alpha=0.3)
    from matplotlib.patches import Patch

    used = sorted(set(colours), key=list(_CLOCK_COLOURS.values()).index)
    clock_names = {v: k for k, v in _CLOCK_COLOURS.items()}
    ax.legend(handles=[Patch(color=c, alpha=0.55, label=f"{clock_names[c]} clock") for c in used],
              loc="lower right", fontsize="small")
    ax.set_title("Latency distribution per report (* baseline; box: quartiles, whiskers: 1.5 IQR)",
                 fontsize="medium", loc="left")
    return _svg(fig)


# ------------------------------------------------------------------ Pareto


def pareto_front(points: list[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both latency (lower) and accuracy (higher)."""
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], -math.inf
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def accuracy_latency(comparison: Comparison) -> str:
    accuracy_row = comparison.row("accuracy.value")
    p50_row = comparison.row("latency_ms.p50")
    points, names = [], []
    if accuracy_row is not None and p50_row is not None:
        for i, column in enumerate(comparison.columns):
            acc, p50 = accuracy_row.values[i], p50_row.values[i]
            if acc is not None and p50 is not None and p50 > 0:
                points.append((p50, acc * 100))
                names.append(column.label)
    fig = _figure(8.5, 4.6)
    if not points:
        _message(fig, "no report has both an accuracy and a latency")
        return _svg(fig)
    ax = fig.subplots()
    front = pareto_front(points)
    others = [i for i in range(len(points)) if i not in front]
    ax.scatter([points[i][0] for i in others], [points[i][1] for i in others],
               color="#999", s=22, label="dominated")
    xs = [points[i][0] for i in front]
    ys = [points[i][1] for i in front]
    ax.step(xs, ys, where="post", color="#137333", linewidth=1.2, alpha=0.8)
    ax.scatter(xs, ys, color="#137333", s=36, zorder=3, label="Pareto front")
    for i in front:
        ax.annotate(names[i], points[i], textcoords="offset points", xytext=(5, 4), fontsize="x-small")
    if _log_scale_wanted([p[0] for p in points]):
        ax.set_xscale("log")
    ax.set_xlabel("latency p50 (ms)")
    ax.set_ylabel(f"{accuracy_row.label} (%)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize="small")
    ax.set_title("Accuracy against latency: the front is what no other report beats on both",
                 fontsize="medium", loc="left")
    return _svg(fig)


# ------------------------------------------------------------------ memory


_BUDGETED = (("memory.flash_bytes", "flash", "#4c72b0"), ("memory.ram_bytes", "RAM", "#55a868"),
             ("memory.arena_bytes", "arena", "#c44e52"))
_RESIDENT = (("memory.model_rss_bytes", "model RSS", "#8172b2"),
             ("memory.peak_rss_bytes", "process peak RSS (whole process)", "#aaaaaa"))


def memory(comparison: Comparison) -> str:
    """Flash, RAM and arena as a share of each board's budget; resident memory where a host ran it."""
    labels = [c.label for c in comparison.columns]
    budgeted = [i for i in range(len(labels))
                if any((row := comparison.row(k)) is not None and row.share(i) is not None for k, _, _ in _BUDGETED)]
    resident = [i for i in range(len(labels))
                if any((row := comparison.row(k)) is not None and row.values[i] is not None for k, _, _ in _RESIDENT)]
    panels = [p for p in (("budget", budgeted), ("resident", resident)) if p[1]]
    rows = sum(len(members) for _, members in panels)
    fig = _figure(8.5, _height(max(rows, 2)) + 0.5 * len(panels))
    if not panels:
        _message(fig, "no report has memory figures")
        return _svg(fig)
    axes = fig.subplots(len(panels), 1, squeeze=False,
                        height_ratios=[max(len(m), 1) for _, m in panels])[:, 0]
    for ax, (kind, members) in zip(axes, panels):
        series = _BUDGETED if kind == "budget" else _RESIDENT
        present = [s for s in series if comparison.row(s[0]) is not None]
        height = 0.8 / len(present)
        for n, (key, name, colour) in enumerate(present):
            row = comparison.row(key)
            ys, widths, texts = [], [], []
            for position, i in enumerate(members):
                value = row.share(i) if kind == "budget" else row.values[i]
                if value is None:
                    continue
                ys.append(position - 0.4 + height * (n + 0.5))
                widths.append(value * 100 if kind == "budget" else value / 2**20)
                texts.append(f"{format_bytes(row.values[i])}"
                             + (f" ({format_share(value)})" if kind == "budget" else ""))
            bars = ax.barh(ys, widths, height=height * 0.9, color=colour, label=name)
            ax.bar_label(bars, texts, padding=3, fontsize="x-small")
        ax.set_yticks(range(len(members)), [labels[i] for i in members])
        ax.invert_yaxis()
        ax.grid(axis="x", alpha=0.3)
        ax.legend(loc="lower right", fontsize="small")
        if kind == "budget":
            ax.axvline(100, color="#b3261e", linestyle="--", linewidth=1)
            ax.set_xlabel("share of the target's budget (%); the dashed line is the budget")
            ax.set_title("Memory against each board's budget", fontsize="medium", loc="left")
            ax.set_xlim(0, max(110, ax.get_xlim()[1] * 1.15))
        else:
            ax.set_xlabel("resident memory (MiB)")
            ax.set_title("Resident memory on the host", fontsize="medium", loc="left")
            ax.set_xlim(0, ax.get_xlim()[1] * 1.25)  # room for the value labels
    return _svg(fig)


CHARTS = (
    ("latency", "Latency distributions", latency),
    ("pareto", "Accuracy against latency", accuracy_latency),
    ("memory", "Memory against budget", memory),
)
