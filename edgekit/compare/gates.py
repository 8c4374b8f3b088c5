"""CI gates: `--fail-on` rules checked against every report of a comparison.

A rule is METRIC OP VALUE. A signed VALUE is a change against the baseline
(`p99>+5%`, `top1<-0.5pt`, `flash>+4KiB`); an unsigned one is a level the
report itself must not cross (`flash>90%budget`, `p50>2ms`, `top1<85%`).

A latency change breaks a rule only when it is significant: the bootstrap
interval of the change (edgekit.compare.stats) lies wholly on the side the
rule forbids, and the measured change is beyond the threshold. Latencies that
are not comparable with the baseline's (another machine or clock), or that
have too few stored samples to judge, are reported as not checked rather than
passed or broken silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from edgekit.compare.formatting import format_relative
from edgekit.compare.table import Comparison, Metric, Row, format_share, metric

#: rule names -> report keys
NAMES = {
    "p50": "latency_ms.p50",
    "p90": "latency_ms.p90",
    "p99": "latency_ms.p99",
    "mean": "latency_ms.mean",
    "throughput": "throughput_ips",
    "top1": "accuracy.value",
    "accuracy": "accuracy.value",
    "cosine": "fidelity.cosine",
    "argmax": "fidelity.argmax_agreement",
    "max_abs_err": "fidelity.max_abs_err",
    "mismatches": "fidelity.mismatches",
    "flash": "memory.flash_bytes",
    "ram": "memory.ram_bytes",
    "arena": "memory.arena_bytes",
    "stack": "memory.stack_bytes",
    "rss": "memory.model_rss_bytes",
    "instructions": "device.instructions",
    "cycles": "device.cycles",
}

_SCALES = {
    "ms": {"ms": 1.0, "us": 1e-3, "s": 1e3},
    "bytes": {"b": 1, "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "kb": 1e3, "mb": 1e6, "gb": 1e9},
}

GRAMMAR = (
    "a rule is METRIC OP VALUE, for example p99>+5%, top1<-0.5pt, flash>90%budget, p50>2ms\n"
    f"  METRIC  {' '.join(NAMES)}\n"
    "  OP      > (broken when above) or < (broken when below)\n"
    "  VALUE   signed: a change against the baseline: +5% (relative), -0.5pt (percentage points,\n"
    "          for accuracy and agreement), +2ms, +16KiB, +1000 (in the metric's unit);\n"
    "          unsigned: a level: 90%budget (share of the target's flash or RAM budget),\n"
    "          85% (accuracy and agreement), 2ms, 512KiB, 1000000"
)

_RULE = re.compile(
    r"^\s*(?P<name>[a-z0-9_]+)\s*(?P<op>[<>])\s*(?P<sign>[+-]?)(?P<number>\d+(?:\.\d*)?|\.\d+)\s*(?P<unit>[a-z%]*)\s*$",
    re.IGNORECASE,
)


class RuleError(ValueError):
    """A malformed rule; the message says what is wrong (the CLI adds the grammar)."""


@dataclass(frozen=True)
class Rule:
    text: str
    metric: Metric
    op: str  # ">" or "<"
    change: bool  # signed: a change against the baseline; unsigned: a level
    kind: str  # "relative" (fraction), "points" (fraction of 1), "budget" (fraction), "value" (metric unit)
    threshold: float

    def crosses(self, x: float) -> bool:
        return x > self.threshold if self.op == ">" else x < self.threshold


def parse(text: str) -> Rule:
    match = _RULE.match(text)
    if not match:
        raise RuleError(f"cannot read rule {text!r}")
    name = match["name"].lower()
    if name not in NAMES:
        raise RuleError(f"rule {text!r}: unknown metric {name!r}")
    m = metric(NAMES[name])
    sign, unit = match["sign"], match["unit"].lower()
    number = float(match["number"]) * (-1 if sign == "-" else 1)
    change = bool(sign)
    if unit == "%" and change:
        kind, threshold = "relative", number / 100
        if not m.relative:
            raise RuleError(f"rule {text!r}: {name} changes in points, not percent: write e.g. {name}<-0.5pt")
    elif unit == "pt":
        if not change or m.unit != "fraction":
            raise RuleError(f"rule {text!r}: pt is a signed change of a fraction (top1<-0.5pt)")
        kind, threshold = "points", number / 100
    elif unit == "%budget":
        if change or m.budget is None:
            which = ", ".join(n for n, k in NAMES.items() if metric(k).budget)
            raise RuleError(f"rule {text!r}: %budget is an unsigned level of {which}")
        kind, threshold = "budget", number / 100
    elif unit == "%":
        if m.unit != "fraction":
            raise RuleError(f"rule {text!r}: an unsigned percent is a level of accuracy or agreement; "
                            f"a change is signed ({name}>+5%)")
        kind, threshold = "value", number / 100
    else:
        scales = _SCALES.get(m.unit, {})
        if unit and unit not in scales:
            allowed = ", ".join(scales) or "no unit"
            raise RuleError(f"rule {text!r}: {name} takes {allowed}, not {unit!r}")
        kind, threshold = "value", number * scales.get(unit, 1)
    return Rule(text.strip(), m, match["op"], change, kind, threshold)


@dataclass
class Outcome:
    rule: Rule
    report: str  # the report's label
    status: str  # "broken", "passed", "not checked"
    detail: str

    def to_json(self) -> dict:
        return {"rule": self.rule.text, "report": self.report, "status": self.status, "detail": self.detail}


def check(comparison: Comparison, rules: list[Rule]) -> list[Outcome]:
    """Every rule against every report it applies to (changes: all but the baseline)."""
    outcomes = []
    for rule in rules:
        row = comparison.row(rule.metric.key)
        for i, column in enumerate(comparison.columns):
            if rule.change and i == comparison.baseline:
                continue
            status, detail = _judge(rule, row, i) if row is not None else ("not checked", "no report has it")
            outcomes.append(Outcome(rule, column.label, status, detail))
    return outcomes


def _judge(rule: Rule, row: Row, i: int) -> tuple[str, str]:
    m = rule.metric
    value = row.values[i]
    if value is None:
        return "not checked", f"the report has no {row.label}"
    if not rule.change:
        if rule.kind == "budget":
            share = row.share(i)
            if share is None:
                return "not checked", "the target states no budget for it"
            detail = f"{m.format(value)} is {format_share(share)} of {m.format(row.budgets[i])}"
            return ("broken" if rule.crosses(share) else "passed"), detail
        return ("broken" if rule.crosses(value) else "passed"), f"{row.label} {_shown(m, value)}"
    delta = row.deltas[i]
    if delta is None:
        return "not checked", "the baseline has no value"
    if delta.not_comparable:
        return "not checked", f"latency not comparable with the baseline's: {delta.not_comparable}"
    if rule.kind == "relative":
        if delta.relative is None:
            return "not checked", "the baseline's value is 0: no relative change"
        change, shown = delta.relative, format_relative(delta.relative)
    elif rule.kind == "points":
        change, shown = delta.absolute, f"{delta.absolute * 100:+.2f} pt"
    else:
        change, shown = delta.absolute, m.format_delta(delta.absolute)
    detail = f"{_shown(m, value)} vs {_shown(m, value - delta.absolute)}: {shown}"
    if m.latency:
        if delta.interval is None:
            return "not checked", f"{detail}; too few stored samples to judge significance"
        interval = delta.interval
        detail += f" (95% CI {_interval(rule, interval)})"
        # only a change whose whole interval lies on the forbidden side counts
        significant = interval.low > 0 if rule.op == ">" else interval.high < 0
        if not significant:
            return "passed", f"{detail}, no significant change"
    return ("broken" if rule.crosses(change) else "passed"), detail


def _shown(m: Metric, value: float) -> str:
    text = m.format(value)
    return f"{text} {m.unit}" if m.unit in ("ms",) else text


def _interval(rule: Rule, interval) -> str:
    if rule.kind == "relative" and interval.relative_low is not None:
        return f"{format_relative(interval.relative_low)}..{format_relative(interval.relative_high)}"
    return f"{rule.metric.format_delta(interval.low)}..{rule.metric.format_delta(interval.high)}"


def grouped(outcomes: list[Outcome]) -> list[tuple[str, list[tuple[str, str]]]]:
    """Per rule: (`p50>+5%: 1 broken, 28 passed`, [(status, line) for each broken report, and the
    unchecked reports grouped by reason]). Passes are only counted: with 50 reports they are noise."""
    found = []
    for rule in dict.fromkeys(o.rule for o in outcomes):
        mine = [o for o in outcomes if o.rule == rule]
        counts = {s: sum(o.status == s for o in mine) for s in ("broken", "passed", "not checked")}
        items = [("broken", f"{o.report}: {o.detail}") for o in mine if o.status == "broken"]
        unchecked: dict[str, list[str]] = {}
        for o in mine:
            if o.status == "not checked":
                unchecked.setdefault(o.detail, []).append(o.report)
        items += [("not checked", f"{detail}: {', '.join(reports)}") for detail, reports in unchecked.items()]
        found.append((f"{rule.text}: " + ", ".join(f"{n} {s}" for s, n in counts.items() if n), items))
    return found


def summary(outcomes: list[Outcome]) -> str:
    lines = []
    for head, items in grouped(outcomes):
        lines.append(head)
        lines += [f"  {status}: {text}" for status, text in items]
    return "\n".join(lines)


def failure_message(outcomes: list[Outcome]) -> str | None:
    """One line naming every broken rule and the report that broke it; None when none broke."""
    broken = [o for o in outcomes if o.status == "broken"]
    if not broken:
        return None
    parts = [f"{o.report} broke {o.rule.text} ({o.detail})" for o in broken]
    return f"{len(broken)} gate{'s' if len(broken) > 1 else ''} broken: " + "; ".join(parts)
