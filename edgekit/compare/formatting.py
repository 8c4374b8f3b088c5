"""Number and table formatting shared by compare's outputs and the CLI's other tables."""

from __future__ import annotations

import math

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



def format_relative(fraction: float) -> str:
    if fraction >= 9:  # a board against a host: "3,958x" reads better than "+395,750%"
        return f"{1 + fraction:,.0f}x"
    percent = fraction * 100
    if abs(percent) >= 10 or percent == int(percent):
        return f"{percent:+.0f}%"
    if abs(percent) >= 1:
        return f"{percent:+.1f}%"
    return f"{percent:+.2f}%"

