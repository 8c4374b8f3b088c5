"""Honest latency deltas: a bootstrap confidence interval from the stored samples.

A report keeps every timed run (`latency_ms.samples`), so the change of a
statistic between two reports (p50, p99, mean, throughput) can be given with
its uncertainty: resample both runs, recompute the statistic on each side,
and take the middle 95% of the differences (the percentile bootstrap, two
independent samples). An interval that spans zero is "no significant change".

Timed runs are a time series, not independent draws: a machine that gets
busier halfway through a benchmark shifts a whole stretch of runs. So runs are
resampled in blocks of consecutive runs (the circular block bootstrap, about
sqrt(n) runs a block), which widens the interval when a run drifts and
changes little when it does not. The generator is seeded from the samples, so
the same two reports always give the same interval.

What the interval cannot see is what differs between the runs themselves
(another machine, another clock): `comparability` says when two reports'
latencies must not be subtracted at all.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np

#: fewer timed runs than this on either side give no interval (a bootstrap of 3 values says nothing)
MIN_SAMPLES = 10
RESAMPLES = 2000
LEVEL = 0.95
SEED = 20240613
# resample in chunks so that 100,000 stored runs do not need gigabytes
_CHUNK_VALUES = 4_000_000

#: the latency statistics an interval can be computed for, by report key
STATISTICS = {
    "latency_ms.p50": ("percentile", 50),
    "latency_ms.p90": ("percentile", 90),
    "latency_ms.p95": ("percentile", 95),
    "latency_ms.p99": ("percentile", 99),
    "latency_ms.mean": ("mean", None),
    "throughput_ips": ("throughput", None),
}


@dataclass(frozen=True)
class Interval:
    """A confidence interval of the change `other - base`, absolute and relative to base."""

    low: float
    high: float
    relative_low: float | None
    relative_high: float | None
    level: float = LEVEL

    @property
    def significant(self) -> bool:
        """The interval lies wholly on one side of zero."""
        return self.low > 0 or self.high < 0

    def to_json(self) -> dict:
        return {
            "level": self.level,
            "absolute": [self.low, self.high],
            "relative": None if self.relative_low is None else [self.relative_low, self.relative_high],
            "significant": self.significant,
        }


def samples_of(report: dict) -> np.ndarray | None:
    """The stored timed runs, or None when the report has too few (or none) to resample."""
    latency = report.get("latency_ms")
    samples = latency.get("samples") if isinstance(latency, dict) else None
    if not isinstance(samples, list):
        return None
    values = np.asarray([v for v in samples if isinstance(v, (int, float)) and not isinstance(v, bool)],
                        dtype=np.float64)
    values = values[np.isfinite(values)]
    return values if values.size >= MIN_SAMPLES else None


def block_length(n: int) -> int:
    """Runs per resampled block: about the square root of their number (10 of 100)."""
    return max(1, math.ceil(math.sqrt(n)))


def bootstrap(samples: np.ndarray | None, resamples: int = RESAMPLES) -> dict[str, np.ndarray] | None:
    """Every statistic of STATISTICS on `resamples` resamples of `samples` (None: nothing to resample).

    The generator is seeded from the samples themselves: the same report always
    resamples the same way, and two different reports independently.
    """
    if samples is None:
        return None
    digest = hashlib.sha256(samples.tobytes()).digest()
    rng = np.random.default_rng([SEED, int.from_bytes(digest[:8], "little")])
    n = samples.size
    block = block_length(n)
    blocks = -(-n // block)
    rows = max(1, _CHUNK_VALUES // n)
    percentiles = [q for kind, q in STATISTICS.values() if kind == "percentile"]
    found: dict[str, list[np.ndarray]] = {key: [] for key in STATISTICS}
    for start in range(0, resamples, rows):
        count = min(rows, resamples - start)
        # whole blocks of consecutive runs, wrapping around the end (the circular block bootstrap)
        starts = rng.integers(0, n, size=(count, blocks, 1))
        picks = ((starts + np.arange(block)) % n).reshape(count, blocks * block)[:, :n]
        resampled = samples[picks]
        by_q = dict(zip(percentiles, np.percentile(resampled, percentiles, axis=1)))
        mean = resampled.mean(axis=1)
        for key, (kind, q) in STATISTICS.items():
            if kind == "percentile":
                found[key].append(by_q[q])
            elif kind == "mean":
                found[key].append(mean)
            else:
                with np.errstate(divide="ignore"):
                    found[key].append(1e3 / mean)  # throughput at batch 1, as the report computes it
    return {key: np.concatenate(parts) for key, parts in found.items()}


def delta_interval(key: str, base: dict[str, np.ndarray] | None, other: dict[str, np.ndarray] | None,
                   level: float = LEVEL) -> Interval | None:
    """The interval of the change in statistic `key` between two bootstraps (see `bootstrap`)."""
    if key not in STATISTICS or base is None or other is None:
        return None
    base_stats, other_stats = base[key], other[key]
    tails = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]
    low, high = np.percentile(other_stats - base_stats, tails)
    relative_low = relative_high = None
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = other_stats / base_stats - 1
    if np.all(np.isfinite(ratios)):
        relative_low, relative_high = (float(v) for v in np.percentile(ratios, tails))
    return Interval(float(low), float(high), relative_low, relative_high, level)


# ---------------------------------------------------------------- comparability


def clock_of(report: dict) -> str:
    latency = report.get("latency_ms")
    source = latency.get("source") if isinstance(latency, dict) else None
    return source if source in ("host", "device") else "host"


def _machine(report: dict) -> dict[str, str]:
    """What identifies where a latency was measured: the device for a device clock, else the host."""
    if clock_of(report) == "device":
        target = report.get("target") if isinstance(report.get("target"), dict) else {}
        return {"device": str(target["name"])} if target.get("name") else {}
    env = report.get("env") if isinstance(report.get("env"), dict) else {}
    return {key: str(env[key]) for key in ("cpu", "machine", "cores") if env.get(key) not in (None, "")}


def comparability(base: dict, other: dict) -> str | None:
    """None when the two latencies may be subtracted, else why not, in a few words.

    A host clock and a device clock measure different things (the link's
    latency, the host's scheduler); two hosts or two boards are different
    machines. Facts a report does not carry are not held against it.
    """
    base_clock, other_clock = clock_of(base), clock_of(other)
    if base_clock != other_clock:
        return f"{base_clock} clock vs {other_clock} clock"
    mine, theirs = _machine(base), _machine(other)
    differing = [key for key in mine if key in theirs and mine[key] != theirs[key]]
    if not differing:
        return None
    if base_clock == "device":
        return f"different devices ({mine['device']} vs {theirs['device']})"
    return "different machines (" + ", ".join(f"{k} {mine[k]} vs {theirs[k]}" for k in differing) + ")"
