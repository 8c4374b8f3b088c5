"""The debug result as text: a header, one row per matched layer, then what failed and why."""

from __future__ import annotations

import math

from edgekit.compare import format_number, format_table
from edgekit.debug.debugger import DebugResult, Row

COLUMNS = ["#", "layer", "op", "max|err|", "cosine", "rel L2", "growth", "reference", "converted", "int8 range"]


def short_name(name: str) -> str:
    """A TFLite tensor name as a table can show it: the first (output) op of a fused
    name, its last two path parts: `model/act_8/Relu;model/bn_8/...` -> `act_8/Relu`."""
    first = name.split(";")[0]
    return "/".join(first.split("/")[-2:]) if first != name or len(name) > 40 else name


def cells(row: Row) -> list[str]:
    """The row's cells, as the text table and the HTML page show them."""
    e = row.errors
    return [
        str(row.depth),
        short_name(row.layer) + (" *" if row.failed else ""),
        row.pair.converted.op,
        format_number(e.max_abs),
        f"{e.cosine:.5f}",
        format_number(e.rel_l2) if math.isfinite(e.rel_l2) else "inf",
        "-" if row.growth is None else f"x{row.growth:.3g}",
        row.pair.reference.quantization_label(),
        row.pair.converted.quantization_label(),
        range_cell(row),
    ]


def range_cell(row: Row) -> str:
    if row.range is None:
        return ""
    if row.range.any_clipped:
        return f"clipped {row.range.clipped_share:.2%}"
    return "coarse" if row.range.narrow else "ok"


def header_lines(result: DebugResult) -> list[str]:
    return [
        f"{result.model} on {result.target}: {result.backend} {result.quantization} ({result.converted}) "
        f"against {result.reference}",
        f"inputs: {result.inputs_from}; tolerance: {result.tolerance.describe()}",
    ]


def verdict_lines(result: DebugResult) -> list[str]:
    """What failed, where, and the reasons the numbers give."""
    lines = []
    first = result.first_failure
    if first is None:
        lines.append(f"every layer within tolerance ({len(result.rows)} layers compared)")
    else:
        e, conv = first.errors, first.pair.converted
        why = [f"cosine {e.cosine:.5f}"]
        if e.outside_tolerance:
            why.append(f"{e.outside_tolerance} values beyond atol/rtol")
        where = "model input" if conv.position < 0 else f"operator {conv.position}"
        shown = short_name(first.layer)
        lines.append(f"first failing layer: {shown} ({conv.op}, {where}): {', '.join(why)}")
        if shown != first.layer:
            lines.append(f"  tensor {first.layer}")
        if first.range is not None:
            lines.append(f"  {first.range.describe()}")
        if result.stopped_early:
            lines.append("  (--fail-fast: later layers not shown)")
    clipped = [r for r in result.rows if r.range is not None and r.range.clipped and r is not first]
    for row in clipped:
        lines.append(f"{short_name(row.layer)}: {row.range.describe()}")
    if result.bit_exact is not None:
        lines.append(f"aot against TFLM: {result.bit_exact.describe()}")
    if result.unmatched:
        names = ", ".join(t.name for t in result.unmatched[:5]) + (", ..." if len(result.unmatched) > 5 else "")
        lines.append(f"{len(result.unmatched)} converted tensors have no reference counterpart: {names}")
    lines += [f"note: {note}" for note in result.notes]
    return lines


def render_text(result: DebugResult) -> str:
    table = format_table([COLUMNS, *[cells(r) for r in result.rows]], right_align_from=3)
    return "\n".join([*header_lines(result), "", table, "", *verdict_lines(result)])
