from __future__ import annotations

from pathlib import Path

import click

from edgekit.commands._options import conversion_options, registry_uri, run_options, runner_options


@click.command("bench")
@click.argument("model", required=False)
@conversion_options(target_required=False)
@click.option("--dataset", "-d", metavar="DATASET", help="Labelled test data: digits, mnist5k or FILE.npz.")
@click.option("--runs", "-n", type=click.IntRange(min=1), default=100, show_default=True, help="Timed runs.")
@click.option("--warmup", "-w", type=click.IntRange(min=0), default=10, show_default=True, help="Warm-up runs.")
@click.option("--limit", type=click.IntRange(min=1), help="Use at most this many test samples.")
@runner_options
@click.option("--out", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write the JSON report here.")
@click.option("--no-log", is_flag=True, help="Do not record the run in the registry.")
@click.option("--matrix", type=click.Path(dir_okay=False, path_type=Path), help="Run a suite file's matrix instead (docs/farm.md).")
@click.option("--executor", metavar="local|ray|ray://HOST:PORT", help="Where --matrix cells run (default: local).")
@click.option("--resume", is_flag=True, help="With --matrix: skip cells the registry already has.")
def bench_command(model, target, backend, quantize, calibration, optimize, dataset, runs, warmup, limit, out, no_log,
                  matrix, executor, resume, **runner):  # fmt: skip
    """Benchmark MODEL (a model or a converted artifact) on a target and report.

    With --matrix SUITE, benchmark every model, target, backend and quantization the suite names.
    """
    if matrix is not None:
        from edgekit.farm.command import run_from_cli

        return run_from_cli(click.get_current_context(), matrix, executor or "local", resume)
    if executor or resume:
        raise click.UsageError("--executor and --resume go with --matrix")
    if model is None or target is None:
        raise click.UsageError("give MODEL and --target, or --matrix SUITE")
    from edgekit.bench.harness import BenchSettings
    from edgekit.bench.run import bench

    options = run_options(runner)
    settings = BenchSettings(runs=runs, warmup=warmup, dataset=dataset, limit=limit, threads=options.threads)
    report = bench(
        model, target, backend=backend, quantization=quantize, calibration=calibration, settings=settings,
        options=options, registry_uri=registry_uri(), out=out, log=not no_log, optimize=optimize,
    )
    click.echo(summary(report))
    if out:
        click.echo(f"wrote {out}")


def summary(report: dict) -> str:
    lat = report["latency_ms"]
    parts = [
        f"{report['model']['name']} on {report['target']['name']} with {report['backend']} "
        f"({report['quantization']}, {report['runner']}):",
        f"p50 {lat['p50']:.4g} ms, p90 {lat['p90']:.4g} ms ({lat['count']} runs, {lat['source']} clock)",
    ]
    if report.get("accuracy"):
        acc = report["accuracy"]
        parts.append(f"{acc['metric']} {acc['value'] * 100:.2f}% on {acc['dataset']} (n={acc['n']})")
    fid = report.get("fidelity")
    if fid:
        text = f"vs {fid['reference']}: max|err| {fid['max_abs_err']:.3g}, cosine {fid['cosine']:.6f}"
        if "bit_exact" in fid:
            text += f", bit-exact {'yes' if fid['bit_exact'] else 'no'} ({fid['mismatches']} mismatches)"
        parts.append(text)
    return "\n  ".join(parts)
