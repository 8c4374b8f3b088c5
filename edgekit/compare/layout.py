"""How a comparison is laid out, whatever it is rendered as (terminal, Markdown, HTML).

Two layouts:

- wide: one column per report, one row per metric, deltas in the cells.
  Best for a few reports side by side.
- rows: one row per report, metrics as columns, reports grouped by target,
  backend, quantization or model. Stays readable for dozens of reports.

A `View` is plain strings in blocks (one block per group) plus notes; the
text, Markdown and HTML renderers only draw it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edgekit.compare.formatting import format_relative, format_table
from edgekit.compare.table import HEADER_FIELDS, Comparison, Delta, Row, interval_text

#: `--by` choices: the header facts reports can be grouped by
GROUP_FIELDS = ("target", "backend", "quantization", "model")
LAYOUTS = ("auto", "wide", "rows")
#: up to this many reports, `auto` picks the wide layout
WIDE_MAX = 6


@dataclass
class Cell:
    text: str
    delta: str | None = None
    tone: str | None = None  # "better", "worse", "muted": how the HTML page colours it

    def plain(self) -> str:
        return self.text if self.delta is None else f"{self.text} ({self.delta})"


@dataclass
class Block:
    title: str | None
    header: list[list[str]]  # the first row titles the columns; the others are facts
    rows: list[list[Cell]]
    baseline_column: int | None = None  # index into a row, for highlighting
    left_columns: int = 1  # leading text columns; the rest are numbers, aligned right


@dataclass
class View:
    layout: str
    blocks: list[Block]
    notes: list[str] = field(default_factory=list)


def build_view(comparison: Comparison, layout: str = "auto", by: str | None = None) -> View:
    if layout == "auto":
        layout = "wide" if len(comparison.columns) <= WIDE_MAX else "rows"
    if layout == "wide":
        view = _wide(comparison, by)
    elif layout == "rows":
        view = _rows(comparison, by or "target")
    else:
        raise ValueError(f"layout {layout!r} is not one of {LAYOUTS}")
    view.notes = _notes(comparison, view.layout)
    return view


def groups(comparison: Comparison, by: str | None) -> list[tuple[str | None, list[int]]]:
    """Column indices grouped by a header fact, groups in order of first appearance."""
    if by is None:
        return [(None, list(range(len(comparison.columns))))]
    found: dict[str, list[int]] = {}
    for i, column in enumerate(comparison.columns):
        found.setdefault(column.header[by], []).append(i)
    return list(found.items())


def _report_title(comparison: Comparison, i: int) -> str:
    label = comparison.columns[i].label
    return f"{label} (baseline)" if i == comparison.baseline else label


def _cell(row: Row, i: int) -> Cell:
    delta = row.deltas[i]
    share = row.share(i)
    tone = "worse" if share is not None and share > 1 else None
    if delta is None:
        return Cell(row.value_text(i), tone=tone)
    return Cell(row.value_text(i), delta.text(row.metric), delta.tone)


# ------------------------------------------------------------------ wide


def _wide(comparison: Comparison, by: str | None) -> View:
    order = [i for _, members in groups(comparison, by) for i in members]
    header = [["report", *(_report_title(comparison, i) for i in order)]]
    header += [[key, *(comparison.columns[i].header[key] for i in order)] for key in HEADER_FIELDS]
    rows = [[Cell(row.label), *(_cell(row, i) for i in order)] for row in comparison.rows]
    return View("wide", [Block(None, header, rows, 1 + order.index(comparison.baseline))])


# ------------------------------------------------------------------ rows


@dataclass(frozen=True)
class _Column:
    title: str
    key: str  # a metric key, or "fidelity"
    delta: bool = False  # a separate column with the change against the baseline


_ROW_COLUMNS = (
    _Column("p50 ms", "latency_ms.p50"),
    _Column("p50 change", "latency_ms.p50", delta=True),
    _Column("p99 ms", "latency_ms.p99"),
    _Column("p99 change", "latency_ms.p99", delta=True),
    _Column("inf/s", "throughput_ips"),
    _Column("accuracy", "accuracy.value"),
    _Column("fidelity", "fidelity"),
    _Column("flash", "memory.flash_bytes"),
    _Column("RAM", "memory.ram_bytes"),
    _Column("arena", "memory.arena_bytes"),
    _Column("model RSS", "memory.model_rss_bytes"),
    _Column("process peak RSS", "memory.peak_rss_bytes"),
    _Column("instructions", "device.instructions"),
    _Column("cycles", "device.cycles"),
)


def short_delta(row: Row, delta: Delta | None) -> tuple[str, str | None]:
    """`+18% [+15%..+21%]`, `+0.8% ns` (no significant change), `n/c` (not comparable)."""
    if delta is None:
        return "-", None
    if delta.not_comparable:
        return "n/c", "muted"
    change = format_relative(delta.relative) if delta.relative is not None else row.metric.format_delta(delta.absolute)
    if delta.interval is None:
        return change, delta.tone
    if not delta.interval.significant:
        return f"{change} ns", "muted"
    return f"{change} [{interval_text(row.metric, delta.interval)}]", delta.tone


def _fidelity(comparison: Comparison, i: int) -> Cell:
    exact = comparison.row("fidelity.bit_exact")
    if exact is not None and exact.values[i] is not None:
        if exact.values[i]:
            return Cell("bit-exact")
        mismatches = comparison.row("fidelity.mismatches")
        count = mismatches.values[i] if mismatches is not None else None
        return Cell(f"{count:,} mismatches" if count is not None else "not bit-exact", tone="worse")
    cosine = comparison.row("fidelity.cosine")
    if cosine is not None and cosine.values[i] is not None:
        return Cell(f"cos {cosine.values[i]:.5f}")
    return Cell("-")


def _rows(comparison: Comparison, by: str) -> View:
    present = {row.metric.key for row in comparison.rows}
    fidelity = {"fidelity.bit_exact", "fidelity.cosine"} & present
    columns = [c for c in _ROW_COLUMNS if c.key in present or (c.key == "fidelity" and fidelity)]
    facts = [key for key in ("model", "target", "backend", "quantization") if key != by]
    accuracy = comparison.row("accuracy.value")
    titles = [accuracy.label if c.key == "accuracy.value" and accuracy else c.title for c in columns]
    header = [["report", *facts, *titles]]
    blocks = []
    for name, members in groups(comparison, by):
        rows = []
        for i in members:
            cells = [Cell(_report_title(comparison, i))]
            cells += [Cell(comparison.columns[i].header[key]) for key in facts]
            for column in columns:
                if column.key == "fidelity":
                    cells.append(_fidelity(comparison, i))
                    continue
                row = comparison.row(column.key)
                if column.delta:
                    text, tone = ("baseline", None) if i == comparison.baseline else short_delta(row, row.deltas[i])
                    cells.append(Cell(text, tone=tone))
                else:
                    cell = _cell(row, i)
                    cells.append(Cell(cell.text, tone=cell.tone if cell.delta is None else None))
            rows.append(cells)
        title = f"{by}: {name} ({len(members)} report{'s' if len(members) != 1 else ''})"
        blocks.append(_without_empty_columns(Block(title, header, rows, left_columns=1 + len(facts))))
    return View("rows", blocks)


def _without_empty_columns(block: Block) -> Block:
    """Drop metric columns no report of the group has (flash for hosts, RSS for boards)."""
    keep = [j for j in range(len(block.header[0]))
            if j < block.left_columns or any(row[j].text != "-" for row in block.rows)]
    return Block(block.title, [[h[j] for j in keep] for h in block.header],
                 [[row[j] for j in keep] for row in block.rows], None, block.left_columns)


# ----------------------------------------------------------------- notes


def _notes(comparison: Comparison, layout: str) -> list[str]:
    base = comparison.columns[comparison.baseline].label
    notes = [f"Changes are against the baseline, {base}."]
    if layout == "wide":
        notes[0] += " Cells show the value, then the change: absolute, relative."
    intervals = any(d is not None and d.interval is not None for row in comparison.rows for d in row.deltas)
    if intervals:
        notes.append(
            "Latency changes carry a 95% bootstrap confidence interval from the stored samples "
            + ("(CI lo..hi)" if layout == "wide" else "([lo..hi])")
            + "; an interval spanning zero is marked "
            + ("'no significant change'." if layout == "wide" else "'ns' (no significant change).")
        )
    reasons: dict[str, list[str]] = {}
    for i, reason in enumerate(comparison.not_comparable):
        if reason:
            reasons.setdefault(reason, []).append(comparison.columns[i].label)
    what = "n/c" if layout == "rows" else "not comparable"
    for reason, labels in reasons.items():
        subject = f"the latency of {labels[0]} is" if len(labels) == 1 else f"the latencies of {', '.join(labels)} are"
        notes.append(f"{what}: {subject} not compared with {base}'s: {reason}.")
    if any(b is not None for row in comparison.rows for b in row.budgets):
        notes.append("(n%) after flash, RAM and arena is the share of the target's budget.")
    if comparison.row("memory.peak_rss_bytes") is not None:
        notes.append("process peak RSS (older reports) is the whole benchmarking process's peak, "
                     "runtime libraries included, not the model's footprint.")
    notes.append("A dash means the report does not have that value.")
    return notes


# ------------------------------------------------------------- renderers


def render_text(comparison: Comparison, layout: str = "auto", by: str | None = None) -> str:
    return view_text(build_view(comparison, layout, by))


def render_markdown(comparison: Comparison, layout: str = "auto", by: str | None = None) -> str:
    return view_markdown(build_view(comparison, layout, by))


def view_text(view: View) -> str:
    out = []
    for block in view.blocks:
        if block.title:
            out.append(block.title)
        table = block.header + [[cell.plain() for cell in row] for row in block.rows]
        out.append(format_table(table, header_rows=len(block.header), right_align_from=block.left_columns))
        out.append("")
    out += view.notes
    return "\n".join(out)


def _md(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|")


def view_markdown(view: View) -> str:
    """GitHub-flavoured Markdown tables, for a pull-request comment."""
    out = []
    for block in view.blocks:
        if block.title:
            out += [f"**{_md(block.title)}**", ""]
        head, *facts = block.header
        out.append("| " + " | ".join(_md(h) for h in head) + " |")
        out.append("| " + " | ".join(["---"] * block.left_columns + ["---:"] * (len(head) - block.left_columns)) + " |")
        for fact in facts:
            out.append("| " + " | ".join(f"*{_md(c)}*" for c in fact) + " |")
        for row in block.rows:
            out.append("| " + " | ".join(_md(cell.plain()) for cell in row) + " |")
        out.append("")
    out += [f"- {_md(note)}" for note in view.notes]
    return "\n".join(out) + "\n"
