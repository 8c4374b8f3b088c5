"""One benchmark harness for every backend and device.

load -> first inference -> warm-up -> N timed runs -> accuracy on the test
split -> fidelity against the reference -> report. Latency comes from the
host clock, or from the device when the runner measures it there (a board
over serial), so numbers stay comparable across backends.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np

from edgekit import datasets
from edgekit.bench.memory import MemoryWindow
from edgekit.core import Artifact, Runner, TensorSpec
from edgekit.bench.env import environment
from edgekit.bench.progress import progress
from edgekit.bench.report import SCHEMA, check
from edgekit.bench.stats import exactness, fidelity, latency_stats
from edgekit.errors import EdgekitError
from edgekit.models import SourceModel
from edgekit.quantize_io import dequantize_output, quantize_input
from edgekit.targets import Target

RANDOM_SEED = 0
FIDELITY_RANDOM_SAMPLES = 32


@dataclass
class BenchSettings:
    runs: int = 100
    warmup: int = 10
    dataset: str | None = None
    limit: int | None = None  # at most this many test samples for accuracy and fidelity
    threads: int | None = None


def _single_input(runner: Runner):
    return _only(runner.inputs)


def _only(inputs: list[TensorSpec]) -> TensorSpec:
    if len(inputs) != 1:
        raise EdgekitError(f"the model has {len(inputs)} inputs; benchmarking on a data set needs one")
    return inputs[0]


def _per_sample_shape(spec) -> tuple[int, ...]:
    return tuple(spec.shape[1:])


REFERENCE_BATCH = 256


def run_samples(runner: Runner, x: np.ndarray, label: str = "") -> list[dict]:
    """Float samples through a runner: one output dict per sample.

    Every runner takes batch 1; a runner that says it is `batched` (a
    framework running the source model) gets whole batches, which is many
    times faster for the same numbers.
    """
    spec = _single_input(runner)
    if getattr(runner, "batched", False):
        outputs = []
        for start in range(0, len(x), REFERENCE_BATCH):
            batch = runner.infer({spec.name: quantize_input(x[start : start + REFERENCE_BATCH], spec)})
            outputs += [{k: v[i : i + 1] for k, v in batch.items()} for i in range(len(next(iter(batch.values()))))]
        return outputs
    return [runner.infer({spec.name: quantize_input(sample[None, ...], spec)}) for sample in progress(x, label=label)]


def _stack(outputs: list[dict], specs, raw: bool) -> np.ndarray:
    """The first output of every sample, stacked; dequantized unless `raw`."""
    spec = specs[0]
    rows = [o[spec.name] for o in outputs]
    stacked = np.concatenate([r.reshape(1, -1) for r in rows])
    return stacked if raw else dequantize_output(stacked, spec)


def evaluation_inputs(inputs: list[TensorSpec], settings: BenchSettings):
    """Test-split samples (and labels) shaped for the model's inputs, or seeded random inputs."""
    spec = _only(inputs)
    shape = _per_sample_shape(spec)
    if settings.dataset:
        data = datasets.load(settings.dataset)
        x = datasets.fit_to_shape(data.x_test, shape, f"data set {data.name}")
        y = data.y_test
        if settings.limit:
            x, y = x[: settings.limit], (None if y is None else y[: settings.limit])
        return x.astype(np.float32), y, data.name
    if -1 in shape:
        raise EdgekitError("the model's input has a dynamic size: give --dataset to benchmark it")
    rng = np.random.default_rng(RANDOM_SEED)
    count = min(settings.limit or FIDELITY_RANDOM_SAMPLES, FIDELITY_RANDOM_SAMPLES)
    if spec.quantized:  # random inputs that cover the whole int8 range of the input
        lo = (np.iinfo(spec.dtype).min - spec.zero_point) * spec.scale
        hi = (np.iinfo(spec.dtype).max - spec.zero_point) * spec.scale
        x = rng.uniform(lo, hi, size=(count, *shape))
    else:
        x = rng.standard_normal((count, *shape))
    return x.astype(np.float32), None, None


def time_runs(runner: Runner, feed: dict, settings: BenchSettings):
    """First inference, warm-up, timed runs: (first_ms, samples_ms, source, device facts).

    The first call goes through `infer`, which checks the feed; the same feed
    then goes straight to the backend's `_infer`, so the timed loop measures
    the runner and not the checks (bench/harness_overhead.py keeps this honest).
    A runner in another process that times runs itself (`time_on_device`)
    loops there, on the device's clock, so the link never enters a sample.
    """
    started = time.perf_counter()
    runner.infer(feed)
    first_ms = _device_ms(runner) or (time.perf_counter() - started) * 1e3
    on_device = getattr(runner, "time_on_device", None)
    if on_device is not None:
        samples = on_device(feed, settings.runs, settings.warmup)
        return first_ms, samples, "device", None
    run = runner._infer
    for _ in progress(range(settings.warmup), label="warm-up"):
        run(feed)
    samples, device = [], None
    clock = time.perf_counter
    for _ in progress(range(settings.runs), label="timed runs"):
        started = clock()
        run(feed)
        elapsed = (clock() - started) * 1e3
        timing = runner.device_timing()
        if timing is not None:
            device = timing
            elapsed = timing["ms"]
        samples.append(elapsed)
    return first_ms, samples, ("device" if device else "host"), device


def _device_ms(runner: Runner) -> float | None:
    timing = runner.device_timing()
    return None if timing is None else timing["ms"]


def accuracy(outputs: np.ndarray, y: np.ndarray | None, dataset: str | None) -> dict | None:
    """Top-1 for classifiers: integer labels and more than one output class."""
    if y is None or outputs.shape[1] < 2 or np.asarray(y).dtype.kind not in "iu":
        return None
    correct = outputs.argmax(axis=1) == np.asarray(y).reshape(-1)
    return {"dataset": dataset, "metric": "top1", "value": float(correct.mean()), "n": int(len(y))}


def judge_fidelity(reference: Runner, x: np.ndarray, ours_raw: np.ndarray, ours: np.ndarray, runner: Runner):
    """Fidelity of our outputs against the reference's on the same inputs."""
    ref_outputs = run_samples(reference, x, label="reference")
    ref_raw = _stack(ref_outputs, reference.outputs, raw=True)
    result = {"reference": reference.name, "n": int(len(x))}
    result |= fidelity(ours, dequantize_output(ref_raw, reference.outputs[0]))
    same_ints = ref_raw.dtype == ours_raw.dtype and ours_raw.dtype.kind in "iu"
    if same_ints:  # an integer reference judges integer outputs bit for bit
        result |= exactness(ours_raw, ref_raw)
    return result


def benchmark(
    runner: Runner,
    artifact: Artifact,
    target: Target,
    settings: BenchSettings,
    source: SourceModel | None = None,
    reference: Runner | None = None,
    load_ms: float | None = None,
    data: tuple | None = None,
    window: MemoryWindow | None = None,
) -> dict:
    """Measure `runner` and return an edgekit.report/1 report (a dict).

    `data` is `evaluation_inputs(...)` made before the runner was loaded, and
    `window` the memory window opened just before loading it: it closes after
    the timed runs, so an in-process runner's report carries what loading and
    running the model added to this process, and nothing else.
    """
    x, y, dataset_name = data if data is not None else evaluation_inputs(runner.inputs, settings)
    spec = _single_input(runner)
    feed = {spec.name: quantize_input(x[:1], spec)}
    first_ms, samples, source_of_time, device = time_runs(runner, feed, settings)
    memory = memory_block(runner, window)
    latency = latency_stats(samples, first_ms) | {"source": source_of_time, "load": load_ms}

    outputs = run_samples(runner, x, label="evaluation")
    ours_raw = _stack(outputs, runner.outputs, raw=True)
    ours = dequantize_output(ours_raw, runner.outputs[0])
    fid = judge_fidelity(reference, x, ours_raw, ours, runner) if reference is not None else None

    report = {
        "schema": SCHEMA,
        "model": _model_block(source, artifact),
        "target": target.to_json(),
        "backend": artifact.backend,
        "quantization": artifact.recipe.get("quantization"),
        "runner": runner.name,
        "artifact": {
            "path": str(artifact.path),
            "sha256": artifact.sha256,
            "recipe_key": artifact.recipe_key,
            "files": artifact.files,
            "info": artifact.info,
        },
        "latency_ms": latency,
        "throughput_ips": 1e3 / latency["mean"] if latency["mean"] > 0 else None,
        "memory": memory,
        "accuracy": accuracy(ours, y, dataset_name),
        "fidelity": fid,
        "env": (runner.environment() or environment()) | {"threads": settings.threads},
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if device:
        report["device"] = device
    return check(report, "the benchmark report")


def memory_block(runner: Runner, window: MemoryWindow | None) -> dict:
    """What the report says of memory, and where it was measured.

    `scope` is `host-process` for a runner in this process (what loading and
    running the model added to it, from `window`, plus what the runtime
    itself reports), `device` for a board (flash, RAM, arena, stack; never
    this host's memory) and `device-process` for a program on a remote device.
    """
    memory: dict = {"scope": runner.memory_scope}
    if runner.memory_scope == "host-process" and window is not None:
        memory |= window.close()
    return memory | runner.memory()


def _model_block(source: SourceModel | None, artifact: Artifact) -> dict:
    if source is not None:
        return {
            "name": source.name,
            "version": source.version,
            "format": source.format,
            "sha256": source.sha256,
            "path": str(source.path),
        }
    info = artifact.source
    return {k: info.get(k) for k in ("name", "version", "format", "sha256", "path")}
