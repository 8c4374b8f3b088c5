"""Harness overhead: edgekit's LiteRT runner against a bare LiteRT loop, same .tflite, one run.

    .venv/bin/python bench/harness_overhead.py [MODEL.tflite ...] [--runs 2000] [--rounds 7]

Both sides time single invokes of the same model on one thread, with the
same input, interleaved in rounds so that drift (turbo, other load) hits both
alike. The ratio of medians is the harness's overhead (aim: under 1.03).
Without arguments it measures the MLPerf Tiny int8 models beside the
repository (../shared/models/mlperf-tiny/).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from edgekit.core import TensorSpec
from edgekit.backends.tflite import LiteRTRunner, load_interpreter
from edgekit.bench.harness import BenchSettings, time_runs
from edgekit.quantize_io import quantize_input

MLPERF = Path(__file__).resolve().parents[2] / "shared" / "models" / "mlperf-tiny"
DEFAULT_MODELS = ["kws_ref_model.tflite", "pretrainedResnet_quant.tflite", "ad01_int8.tflite"]


def bare_loop(path: Path, x: np.ndarray, runs: int) -> list[float]:
    interpreter = load_interpreter(path, threads=1)
    index_in = interpreter.get_input_details()[0]["index"]
    index_out = interpreter.get_output_details()[0]["index"]
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        interpreter.set_tensor(index_in, x)
        interpreter.invoke()
        interpreter.get_tensor(index_out)
        samples.append((time.perf_counter() - started) * 1e3)
    return samples


def harness_loop(runner: LiteRTRunner, x: np.ndarray, runs: int) -> list[float]:
    feed = {runner.inputs[0].name: x}
    _, samples, _, _ = time_runs(runner, feed, BenchSettings(runs=runs, warmup=0, threads=1))
    return samples


def measure(path: Path, runs: int, rounds: int) -> dict:
    runner = LiteRTRunner(path, threads=1)
    spec: TensorSpec = runner.inputs[0]
    shape = tuple(1 if d == -1 else d for d in spec.shape)
    x = quantize_input(np.random.default_rng(0).uniform(-1, 1, size=shape).astype(np.float32), spec)
    bare_loop(path, x, runs // 4)  # warm both paths before the rounds
    harness_loop(runner, x, runs // 4)
    bare, ours = [], []
    for _ in range(rounds):
        bare += bare_loop(path, x, runs)
        ours += harness_loop(runner, x, runs)
    b, h = statistics.median(bare), statistics.median(ours)
    return {"model": path.name, "bare_p50_ms": b, "harness_p50_ms": h, "ratio": h / b, "runs": runs * rounds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", type=Path)
    parser.add_argument("--runs", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    models = args.models or [MLPERF / m for m in DEFAULT_MODELS if (MLPERF / m).is_file()]
    if not models:
        raise SystemExit("no models given and none found in ../shared/models/mlperf-tiny/")
    print("| model | bare LiteRT p50 (ms) | edgekit runner p50 (ms) | ratio | timed runs each |")
    print("| --- | --- | --- | --- | --- |")
    for path in models:
        r = measure(path, args.runs, args.rounds)
        print(f"| {r['model']} | {r['bare_p50_ms']:.4f} | {r['harness_p50_ms']:.4f} | {r['ratio']:.3f} | {r['runs']} |")


if __name__ == "__main__":
    main()
