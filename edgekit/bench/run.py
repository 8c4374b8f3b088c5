"""`bench()`: the one way a benchmark is made, for the CLI and every script in bench/.

    model ref ──artifact_for──▶ artifact ──place──▶ runner ──harness──▶ report ──▶ file, registry
                                   │                              ▲
                                   └──reference_runner────────────┘ (fidelity)

The target's device must be reachable before anything is converted, and a
report is written (atomically) and logged only once it is complete.
"""

from __future__ import annotations

import time
from pathlib import Path

from edgekit import backends, datasets, placement, targets
from edgekit.bench import harness
from edgekit.bench import report as reports
from edgekit.bench.memory import MemoryWindow, preload
from edgekit.core import RunOptions


def bench(
    model: str,
    target: str,
    *,
    backend: str | None = None,
    quantization: str | None = None,
    calibration: str | None = None,
    settings: harness.BenchSettings | None = None,
    options: RunOptions | None = None,
    registry_uri: str | None = None,
    out: Path | None = None,
    log: bool = True,
    tags: dict[str, str] | None = None,
    optimize: str | None = None,
) -> dict:
    """Benchmark `model` (a registry name, a model file or an artifact folder) on `target`.

    `tags` go on the registry's run beside edgekit's own (a matrix names its cell there).
    """
    from edgekit.pipeline import artifact_for, open_registry, reference_runner

    settings = settings or harness.BenchSettings()
    options = options or RunOptions(threads=settings.threads)
    if options.registry is None:
        options.registry = registry_uri
    the_target = targets.get(target)
    placement.reachable(the_target, options)  # refuse before converting anything
    artifact, source = artifact_for(model, target, backend, quantization, calibration, registry_uri, optimize=optimize)
    placement.check(artifact, the_target)
    if settings.dataset is None and source is not None:
        settings.dataset = source.dataset
    if settings.dataset:
        datasets.load(settings.dataset)  # loaded (and cached) outside the memory window
    data = harness.evaluation_inputs(artifact.inputs, settings)
    reference = reference_runner(artifact, source)
    try:
        preload(backends.get(artifact.backend).runtime_modules)
        window = MemoryWindow.open()
        started = time.perf_counter()
        with placement.place(artifact, the_target, options) as runner:
            load_ms = (time.perf_counter() - started) * 1e3
            report = harness.benchmark(
                runner, artifact, the_target, settings, source, reference, load_ms, data=data, window=window
            )
            runner.show_report(report)
    finally:
        if reference is not None:
            reference.close()
    if out is not None:
        reports.write(report, Path(out))
    if log:
        open_registry(registry_uri).log_benchmark(report, source, artifact, tags)
    return report
