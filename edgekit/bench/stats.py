"""Latency statistics, named as trtexec and TFLite's benchmark_model name them."""

from __future__ import annotations

import numpy as np


def latency_stats(samples_ms: list[float], first_ms: float | None) -> dict:
    a = np.asarray(samples_ms, dtype=np.float64)
    if a.size == 0:
        raise ValueError("no timed runs")
    pct = lambda q: float(np.percentile(a, q))  # noqa: E731 - a local shorthand
    return {
        "count": int(a.size),
        "mean": float(a.mean()),
        "std": float(a.std(ddof=1)) if a.size > 1 else 0.0,
        "min": float(a.min()),
        "p50": pct(50),
        "p90": pct(90),
        "p95": pct(95),
        "p99": pct(99),
        "max": float(a.max()),
        "first": None if first_ms is None else float(first_ms),
        "samples": [float(v) for v in a],
    }


def fidelity(outputs: np.ndarray, reference: np.ndarray) -> dict:
    """How far float outputs are from the reference's, per element and per sample."""
    out = outputs.reshape(len(outputs), -1).astype(np.float64)
    ref = reference.reshape(len(reference), -1).astype(np.float64)
    if out.shape != ref.shape:
        raise ValueError(f"outputs {out.shape} and reference {ref.shape} differ in shape")
    err = np.abs(out - ref)
    denom = np.linalg.norm(out) * np.linalg.norm(ref)
    cosine = float(np.dot(out.ravel(), ref.ravel()) / denom) if denom > 0 else float(np.array_equal(out, ref))
    return {
        "max_abs_err": float(err.max()),
        "mean_abs_err": float(err.mean()),
        "cosine": cosine,
        "argmax_agreement": float(np.mean(out.argmax(axis=1) == ref.argmax(axis=1))) if out.shape[1] > 1 else None,
    }


def exactness(outputs: np.ndarray, reference: np.ndarray) -> dict:
    """Bit-exactness of integer outputs against an integer reference."""
    mismatches = int(np.count_nonzero(outputs != reference))
    return {"bit_exact": mismatches == 0, "mismatches": mismatches, "elements": int(outputs.size)}
