"""The report files behind BENCHMARKS.md: where each goes, how rounds join, how tables read them.

Every number a bench/ script puts in BENCHMARKS.md is a field of an
`edgekit.report/1` file under bench/reports/<section>/, named
`<model>-<target>-<backend>[-<variant>].json`, so `edgekit compare` reads
any two of them. A script either calls `edgekit.bench.run.bench()` for one
configuration (`bench_to_file`), or, when two runners must alternate in
one process for a fair ratio, places them itself and lets the harness
measure each in turn (`interleaved`): the same `placement.place` and
`harness.benchmark` that `bench()` uses, one report per runner.
"""

from __future__ import annotations

import os
import tempfile
import time
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REPORTS = REPO / "bench" / "reports"
MLPERF_DIR = Path(os.environ.get("EDGEKIT_MLPERF_DIR", REPO.parent / "shared" / "models" / "mlperf-tiny"))
MLPERF_MODELS = ("kws_ref_model.tflite", "pretrainedResnet_quant.tflite", "ad01_int8.tflite")


def models_from(paths: list[Path]) -> list[Path]:
    """The model files named (files or folders of the MLPerf Tiny models), or the shared ones."""
    if not paths:
        paths = [MLPERF_DIR]
    found = []
    for path in paths:
        if path.is_dir():
            found += [path / name for name in MLPERF_MODELS if (path / name).is_file()]
        elif path.is_file():
            found.append(path)
        else:
            raise SystemExit(f"model not found: {path}")
    if not found:
        raise SystemExit(f"no MLPerf Tiny models in {', '.join(map(str, paths))} (give model files)")
    return found


def as_given(path: Path) -> str:
    """The model's path relative to the working directory when it is below it or beside it.

    Reports record the path they were given; a relative one keeps the
    committed files free of where this checkout happens to live.
    """
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive
        return str(path)


def file_name(model: str | Path, target: str, backend: str, variant: str | None = None) -> str:
    stem = Path(model).stem
    return f"{stem}-{target}-{backend}{'-' + variant if variant else ''}.json"


def add_emulator_options(parser, runs: int, out: Path | None) -> None:
    """The options of the scripts that bench on emulated boards: --runs (default `runs`),
    --limit, --out (default `out`; none when None), --registry and --tables-only."""
    parser.add_argument("--runs", type=int, default=runs, help="timed runs (the count is the same on every run)")
    parser.add_argument("--limit", type=int, default=20, help="inputs compared with the TFLM interpreter")
    if out is not None:
        parser.add_argument("--out", type=Path, default=out, help="folder of the report files")
    parser.add_argument("--registry", help="registry to cache conversions in (default: a temporary one)")
    parser.add_argument("--tables-only", action="store_true", help="print the tables from the reports already there")


@contextmanager
def registry(uri: str | None):
    """The registry conversions are cached in: the one given, else a temporary one.

    A temporary registry keeps the user's own out of it and keeps this
    machine's paths out of the reports' `artifact.path`.
    """
    if uri:
        yield uri
        return
    with tempfile.TemporaryDirectory(prefix="edgekit-bench-") as folder:
        yield folder


def bench_to_file(model: str | Path, target: str, out: Path, *, registry_uri: str, **kwargs) -> dict:
    """`bench()` one configuration and write its report to `out` (not logged in the registry)."""
    from edgekit.bench.run import bench

    model = model if isinstance(model, str) else as_given(model)
    return bench(model, target, out=out, log=False, registry_uri=registry_uri, **kwargs)


@dataclass
class Contender:
    """One runner of an interleaved measurement, and where its report goes."""

    artifact: object  # edgekit.core.Artifact
    source: object  # edgekit.models.SourceModel or None
    settings: object  # edgekit.bench.harness.BenchSettings
    out: Path
    reference: object = None  # a Runner that judges fidelity, or None
    runner: object = None  # set while the measurement runs, or given already open


def interleaved(contenders: list[Contender], target: str, rounds: int) -> list[dict]:
    """Measure each contender in turn, `rounds` times, in this process; one report each.

    Drift (turbo, other load on a shared machine) then hits every runner
    alike. Each round is a whole `harness.benchmark`; the report written is
    the first round's, with `latency_ms` recomputed by the harness's own
    statistics over the timed runs of every round (`rounds` says how many).
    Fidelity is judged in the first round only.
    """
    from edgekit import placement, targets
    from edgekit.bench import harness
    from edgekit.bench import report as reports
    from edgekit.bench.stats import latency_stats
    from edgekit.core import RunOptions

    the_target = targets.get(target)
    joined: list[dict] = []
    with ExitStack() as stack:
        loads = []
        for c in contenders:
            started = time.perf_counter()
            if c.runner is None:
                options = RunOptions(threads=c.settings.threads)
                c.runner = stack.enter_context(placement.place(c.artifact, the_target, options))
            else:
                stack.callback(c.runner.close)
            loads.append((time.perf_counter() - started) * 1e3)
            if c.reference is not None:
                stack.callback(c.reference.close)
        data = [harness.evaluation_inputs(c.runner.inputs, c.settings) for c in contenders]
        measured: list[list[dict]] = [[] for _ in contenders]
        for round_ in range(rounds):
            for i, c in enumerate(contenders):
                reference = c.reference if round_ == 0 else None
                measured[i].append(
                    harness.benchmark(
                        c.runner, c.artifact, the_target, c.settings, c.source, reference, loads[i], data=data[i]
                    )
                )
    for c, runs in zip(contenders, measured):
        first = runs[0]
        samples = [s for r in runs for s in r["latency_ms"]["samples"]]
        latency = latency_stats(samples, first["latency_ms"]["first"])
        latency |= {k: first["latency_ms"][k] for k in ("source", "load")} | {"rounds": rounds}
        report = dict(first, latency_ms=latency, throughput_ips=1e3 / latency["mean"])
        reports.write(reports.check(report, str(c.out)), c.out)
        joined.append(report)
    return joined


def settings(runs: int, warmup: int, limit: int | None = None, threads: int | None = 1):
    from edgekit.bench.harness import BenchSettings

    return BenchSettings(runs=runs, warmup=warmup, limit=limit, threads=threads)


def read(path: Path) -> dict:
    from edgekit.bench import report as reports

    return reports.read(path)


def cite(paths) -> str:
    """The report files a table came from, as the text names them (relative to the repository)."""
    names = []
    for p in paths:
        p = Path(p).resolve()
        try:
            names.append(f"`{p.relative_to(REPO).as_posix()}`")
        except ValueError:
            names.append(f"`{p.name}`")
    return ", ".join(names)
