"""Synthetic edgekit.report/1 reports for compare's layout, gate and page tests.

Latency samples come from a seeded generator, so every run builds the same
reports. Real reports (from `edgekit bench`) are made by tests/test_compare_real.py.
"""

from __future__ import annotations

import numpy as np

HOST_ENV = {"cpu": "AMD EPYC", "cores": 2, "machine": "x86_64", "os": "Linux", "python": "3.11.7",
            "edgekit": "0.1.0", "packages": {"numpy": "2.1.3", "ai-edge-litert": "2.3.0"}, "threads": None}

TARGETS = {
    "host-cpu": {"name": "host-cpu", "kind": "host", "flash_bytes": None, "ram_bytes": 25 << 30},
    "mps2-an386": {"name": "mps2-an386", "kind": "mcu", "flash_bytes": 4 << 20, "ram_bytes": 4 << 20},
    "nucleo-l4r5zi": {"name": "nucleo-l4r5zi", "kind": "mcu", "flash_bytes": 2 << 20, "ram_bytes": 640 << 10},
    "nrf52840dk": {"name": "nrf52840dk", "kind": "mcu", "flash_bytes": 1 << 20, "ram_bytes": 256 << 10},
}


def report(*, model="kws", target="host-cpu", backend="tflite", quantization="none", median=1.0,
           spread=0.02, runs=100, seed=0, accuracy=0.9, memory=None, env=None) -> dict:
    """One report: `runs` latency samples around `median` ms, on `target`'s clock."""
    rng = np.random.default_rng(seed)
    device = TARGETS[target]["kind"] == "mcu"
    if device:  # an instruction-counting emulator or a board's cycle counter: the same every run
        samples = np.full(runs, median)
    else:
        samples = median * np.exp(rng.normal(0, spread, runs))
    stats = {
        "count": runs, "mean": float(samples.mean()), "std": float(samples.std(ddof=1)),
        "min": float(samples.min()), "max": float(samples.max()), "first": float(samples[0] * 3),
        **{f"p{q}": float(np.percentile(samples, q)) for q in (50, 90, 95, 99)},
        "samples": [float(v) for v in samples], "source": "device" if device else "host", "load": 12.0,
    }
    if memory is None:
        memory = ({"flash_bytes": 96 << 10, "ram_bytes": 40 << 10, "arena_bytes": 24 << 10}
                  if device else {"model_rss_bytes": 18 << 20})
    result = {
        "schema": "edgekit.report/1",
        "model": {"name": model, "version": 1, "format": "keras", "sha256": f"{seed:02x}" * 32, "path": "m.keras"},
        "target": TARGETS[target],
        "backend": backend,
        "quantization": quantization,
        "runner": "qemu" if device else "litert",
        "artifact": {"path": "a", "sha256": f"{seed + 1:02x}" * 32, "recipe_key": f"{seed + 2:02x}" * 32,
                     "files": ["model.tflite"], "info": {}},
        "latency_ms": stats,
        "throughput_ips": 1e3 / stats["mean"],
        "memory": memory,
        "accuracy": None if accuracy is None else {"dataset": "mnist5k", "metric": "top1", "value": accuracy,
                                                   "n": 1000},
        "fidelity": {"reference": "litert", "n": 1000, "max_abs_err": 0.004, "mean_abs_err": 0.0004,
                     "cosine": 0.9999, "argmax_agreement": 0.99},
        "env": env or HOST_ENV,
        "created_at": "2026-01-01T00:00:00+00:00",
    }
    if device:
        result["device"] = {"ms": median, "instructions": int(median * 1e6), "cycles": int(median * 1e6)}
        result["fidelity"] |= {"bit_exact": True, "mismatches": 0, "elements": 10000}
    return result


def many(n: int = 30) -> list[dict]:
    """`n` reports over four targets, three backends and two quantizations, with a spread of results."""
    rng = np.random.default_rng(1234)
    combos = [("host-cpu", "tflite", "none"), ("host-cpu", "tflite", "int8"), ("host-cpu", "onnx", "none"),
              ("mps2-an386", "aot", "int8"), ("nucleo-l4r5zi", "tflm", "int8"), ("nrf52840dk", "tflm", "int8")]
    reports = []
    for i in range(n):
        target, backend, quantization = combos[i % len(combos)]
        device = TARGETS[target]["kind"] == "mcu"
        median = float(rng.uniform(20, 90) if device else rng.uniform(0.05, 0.8))
        flash = int(rng.uniform(0.2, 1.1) * TARGETS[target]["flash_bytes"]) if device else None
        memory = ({"flash_bytes": flash, "ram_bytes": int(rng.uniform(0.1, 0.7) * TARGETS[target]["ram_bytes"]),
                   "arena_bytes": int(rng.uniform(0.05, 0.5) * TARGETS[target]["ram_bytes"])} if device else None)
        reports.append(report(model=f"kws-{i // 6}", target=target, backend=backend, quantization=quantization,
                              median=median, seed=i, accuracy=float(rng.uniform(0.8, 0.95)), memory=memory))
    return reports
