"""Honest latency deltas (bootstrap intervals, comparability) and `--fail-on` gates, on synthetic reports.

Real reports from `edgekit bench` check the same paths end to end in test_compare_real.py.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from clitools import run_cli_here as run_cli
from comparereports import HOST_ENV, report
from edgekit.compare import compare, gates, stats


def write(tmp_path, name, data):
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return str(path)


# ------------------------------------------------------------ the bootstrap


def p50_delta(base: dict, other: dict):
    return compare([base, other]).row("latency_ms.p50").deltas[1]


def test_two_draws_of_one_distribution_are_no_significant_change():
    delta = p50_delta(report(median=1.0, seed=1), report(median=1.0, seed=2))
    assert delta.interval is not None and not delta.interval.significant
    assert delta.interval.relative_low < 0 < delta.interval.relative_high
    assert delta.tone == "muted"


def test_a_ten_percent_slowdown_is_significant_and_inside_its_interval():
    base, slow = report(median=1.0, seed=1), report(median=1.1, seed=2)
    delta = p50_delta(base, slow)
    assert delta.interval.significant and delta.interval.relative_low > 0
    measured = slow["latency_ms"]["p50"] / base["latency_ms"]["p50"] - 1
    assert delta.interval.relative_low <= measured <= delta.interval.relative_high
    assert delta.interval.relative_low < 0.10 < delta.interval.relative_high
    assert delta.tone == "worse"


def test_the_interval_is_reproducible_and_follows_the_samples():
    base, other = report(seed=3), report(median=1.05, seed=4)
    first = p50_delta(base, other).interval
    assert p50_delta(base, other).interval == first  # seeded
    # the interval is computed from the samples, not from the stored percentiles
    shifted = json.loads(json.dumps(other))
    shifted["latency_ms"]["samples"] = [v * 2 for v in shifted["latency_ms"]["samples"]]
    assert p50_delta(base, shifted).interval.relative_low > 1.0


def test_too_few_samples_give_no_interval():
    few = report(runs=stats.MIN_SAMPLES - 1, seed=5)
    delta = p50_delta(report(seed=6), few)
    assert delta.interval is None and delta.absolute is not None


def test_throughput_gets_an_interval_too():
    delta = compare([report(median=1.0, seed=1), report(median=1.2, seed=2)]).row("throughput_ips").deltas[1]
    assert delta.interval.significant and delta.interval.high < 0  # slower: fewer inferences per second


# ---------------------------------------------------------- comparability


def test_host_and_device_clocks_are_not_comparable():
    delta = p50_delta(report(), report(target="mps2-an386"))
    assert delta.not_comparable == "host clock vs device clock"
    assert delta.absolute is None and delta.interval is None


def test_two_machines_are_not_comparable_but_unknown_facts_are_not_held_against_a_report():
    other_machine = report(env=HOST_ENV | {"cpu": "Apple M2", "machine": "arm64"})
    assert p50_delta(report(), other_machine).not_comparable == (
        "different machines (cpu AMD EPYC vs Apple M2, machine x86_64 vs arm64)"
    )
    sparse = report(env={"python": "3.11"})
    assert p50_delta(report(), sparse).not_comparable is None
    # another board, each on its own clock
    assert p50_delta(report(target="nrf52840dk"), report(target="mps2-an386")).not_comparable == (
        "different devices (nrf52840dk vs mps2-an386)"
    )
    # the same emulated board, deterministic instruction counts: a change with a zero-width interval
    delta = p50_delta(report(target="mps2-an386", median=30), report(target="mps2-an386", median=31))
    assert delta.not_comparable is None and delta.interval.low == delta.interval.high == pytest.approx(1.0)


# -------------------------------------------------------------- the grammar


@pytest.mark.parametrize(
    "text, key, op, change, kind, threshold",
    [
        ("p99>+5%", "latency_ms.p99", ">", True, "relative", 0.05),
        ("top1<-0.5pt", "accuracy.value", "<", True, "points", -0.005),
        ("flash>90%budget", "memory.flash_bytes", ">", False, "budget", 0.9),
        ("p50>2ms", "latency_ms.p50", ">", False, "value", 2.0),
        ("p50 > 250us", "latency_ms.p50", ">", False, "value", 0.25),
        ("arena>+16KiB", "memory.arena_bytes", ">", True, "value", 16384),
        ("top1<85%", "accuracy.value", "<", False, "value", 0.85),
        ("throughput<-10%", "throughput_ips", "<", True, "relative", -0.1),
        ("instructions>+1000", "device.instructions", ">", True, "value", 1000),
    ],
)
def test_rules_parse(text, key, op, change, kind, threshold):
    rule = gates.parse(text)
    assert (rule.metric.key, rule.op, rule.change, rule.kind) == (key, op, change, kind)
    assert rule.threshold == pytest.approx(threshold)


@pytest.mark.parametrize(
    "text, phrase",
    [
        ("p50", "cannot read rule"),
        ("p50>>5%", "cannot read rule"),
        ("p50=+5%", "cannot read rule"),
        ("speed>+5%", "unknown metric 'speed'"),
        ("top1<-0.5%", "changes in points"),
        ("p50>90%budget", "%budget is an unsigned level"),
        ("flash>+90%budget", "%budget is an unsigned level"),
        ("p50>+5pt", "pt is a signed change of a fraction"),
        ("p50>5KiB", "takes ms, us, s, not 'kib'"),
        ("p50>5%", "an unsigned percent is a level of accuracy"),
    ],
)
def test_malformed_rules_are_named(text, phrase):
    with pytest.raises(gates.RuleError, match=phrase.replace("(", r"\(").replace("%", "%")):
        gates.parse(text)


def test_a_malformed_rule_is_a_usage_error_that_shows_the_grammar(tmp_path, capsys):
    a = write(tmp_path, "a.json", report())
    code, out, err = run_cli(capsys, "compare", a, a, "--fail-on", "p50>>5%")
    assert code == 2 and out == ""
    assert "cannot read rule 'p50>>5%'" in err
    assert "a rule is METRIC OP VALUE" in err and "90%budget" in err


# ------------------------------------------------------------------ gates


def outcomes(reports, *rules):
    return gates.check(compare(reports, [f"r{i}" for i in range(len(reports))]), [gates.parse(r) for r in rules])


def test_a_significant_slowdown_beyond_the_threshold_breaks_the_rule():
    [result] = outcomes([report(seed=1), report(median=1.1, seed=2)], "p50>+5%")
    assert result.status == "broken" and result.report == "r1"
    assert "95% CI" in result.detail
    [result] = outcomes([report(seed=1), report(median=1.03, seed=2)], "p50>+5%")
    assert result.status == "passed"  # significant, but under the threshold
    [result] = outcomes([report(seed=1), report(median=1.0, seed=2)], "p50>+5%")
    assert result.status == "passed"


def test_only_a_significant_change_breaks_a_latency_rule():
    rng = np.random.default_rng(9)
    noisy = rng.lognormal(0, 0.5, 20)
    base, other = report(seed=1, runs=20), report(seed=1, runs=20)
    base["latency_ms"]["samples"] = list(noisy)
    other["latency_ms"]["samples"] = list(rng.permutation(noisy) * 1.08)
    base["latency_ms"]["p50"] = float(np.percentile(noisy, 50))
    other["latency_ms"]["p50"] = base["latency_ms"]["p50"] * 1.08  # +8%: over the threshold...
    [result] = outcomes([base, other], "p50>+5%")
    assert result.status == "passed" and result.detail.endswith("no significant change")  # ...but noise


def test_latencies_that_do_not_compare_are_not_checked_rather_than_passed():
    [result] = outcomes([report(), report(target="mps2-an386", median=5.0)], "p99>+5%")
    assert result.status == "not checked" and "host clock vs device clock" in result.detail


def test_accuracy_budget_and_level_rules():
    base = report(accuracy=0.90)
    worse = report(seed=2, accuracy=0.889)
    board = report(target="nrf52840dk", seed=3, memory={"flash_bytes": 950 << 10, "ram_bytes": 100 << 10})
    found = outcomes([base, worse, board], "top1<-0.5pt", "flash>90%budget", "p50>2ms")
    status = {(o.rule.text, o.report): o.status for o in found}
    assert status[("top1<-0.5pt", "r1")] == "broken"  # -1.1 pt
    assert status[("top1<-0.5pt", "r2")] == "passed"  # same accuracy
    assert status[("flash>90%budget", "r2")] == "broken"  # 950 KiB of 1 MiB: 93%
    assert status[("flash>90%budget", "r0")] == "not checked"  # a host has no flash
    assert status[("p50>2ms", "r0")] == "passed"
    detail = next(o.detail for o in found if o.rule.text == "flash>90%budget" and o.report == "r2")
    assert detail == "950 KiB is 93% of 1 MiB"
    message = gates.failure_message(found)
    assert message.startswith("2 gates broken: r1 broke top1<-0.5pt (") and "r2 broke flash>90%budget" in message


def test_cli_gates_exit_1_naming_report_and_rule(tmp_path, capsys):
    a = write(tmp_path, "before.json", report(seed=1))
    b = write(tmp_path, "after.json", report(median=1.2, seed=2))
    code, out, err = run_cli(capsys, "compare", a, b, "--fail-on", "p50>+5%", "--fail-on", "top1<-0.5pt")
    assert code == 1
    assert err.startswith("error: 1 gate broken: after.json broke p50>+5% (") and err.count("\n") == 1
    assert "gates:\np50>+5%: 1 broken\n  broken: after.json:" in out
    assert "top1<-0.5pt: 1 passed" in out
    code, out, _ = run_cli(capsys, "compare", a, b, "--fail-on", "p50>+50%", "--json")
    assert code == 0
    assert [g["status"] for g in json.loads(out)["gates"]] == ["passed"]
