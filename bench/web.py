"""One float model on LiteRT (host), TF.js under Node.js (wasm) and TF.js in headless Chromium (wasm).

    .venv/bin/python bench/web.py [MODEL] [--out DIR] [--runs N] [--warmup N]

MODEL is a Keras or SavedModel source (default: the demo's mnist5k CNN,
trained here with the demo's seed). Each target is benchmarked through
edgekit's `bench()` in this one run, one thread each, on the mnist5k test
split; the reports go to DIR (default bench-web/) as host-litert.json,
node-wasm.json and browser-wasm.json. Prints a Markdown table: p50 and p90,
each p50 as a multiple of LiteRT's, top-1, fidelity against the Keras model,
and what TF.js ran (backend, SIMD, threads).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edgekit.bench.harness import BenchSettings
from edgekit.bench.run import bench
from edgekit.core import RunOptions

RUNS = (
    ("host-litert", "host-cpu", "tflite"),
    ("node-wasm", "node-wasm", "tfjs"),
    ("browser-wasm", "browser-wasm", "tfjs"),
)


def measure(model: Path, out: Path, runs: int, warmup: int) -> dict[str, dict]:
    reports = {}
    for label, target, backend in RUNS:
        settings = BenchSettings(runs=runs, warmup=warmup, dataset="mnist5k", threads=1)
        reports[label] = bench(
            str(model), target, backend=backend, quantization="none", settings=settings,
            options=RunOptions(threads=1), out=out / f"{label}.json", log=False,
        )
    return reports


def _ran_with(report: dict) -> str:
    details = (report.get("env") or {}).get("runner_details") or {}
    if not details:
        return report["runner"]
    parts = [f"tfjs {details.get('backend')}"]
    if "simd" in details:
        parts.append("SIMD" if details["simd"] else "no SIMD")
    if "threads" in details:
        parts.append(f"{details['threads']} thread{'s' if details['threads'] != 1 else ''}")
    return ", ".join(parts)


def table(reports: dict[str, dict]) -> str:
    base = reports["host-litert"]["latency_ms"]["p50"]
    rows = [
        "| run | runs with | p50 ms | p90 ms | p50 / LiteRT | top-1 | max abs err vs Keras |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, report in reports.items():
        latency = report["latency_ms"]
        accuracy = report.get("accuracy") or {}
        fidelity = report.get("fidelity") or {}
        rows.append(
            f"| {label} | {_ran_with(report)} | {latency['p50']:.4f} | {latency['p90']:.4f} | "
            f"{latency['p50'] / base:.2f}x | {accuracy.get('value', float('nan')) * 100:.2f}% | "
            f"{fidelity.get('max_abs_err', float('nan')):.2g} |"
        )
    return "\n".join(rows)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", type=Path, help="a Keras or SavedModel source (default: the demo's CNN)")
    parser.add_argument("--out", type=Path, default=Path("bench-web"))
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    model = args.model
    if model is None:
        from edgekit.demo import train

        model = args.out / "mnist_cnn.keras"
        if not model.exists():
            train(model)
    reports = measure(model, args.out, args.runs, args.warmup)
    first = reports["browser-wasm"]["env"]
    print(f"\n{model.name}, mnist5k test split (n={reports['host-litert']['accuracy']['n']}), "
          f"{args.runs} timed runs after {args.warmup}; browser: {first.get('user_agent')}\n")
    print(table(reports))


if __name__ == "__main__":
    main()
