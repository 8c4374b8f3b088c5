"""`edgekit debug`: where a converted model drifts from its reference, layer by layer."""

from __future__ import annotations

import json
from pathlib import Path

import click

from edgekit.commands._options import conversion_options, registry_uri


@click.command("debug")
@click.argument("model")
@conversion_options
@click.option("--dataset", "-d", metavar="DATASET", help="Inputs: digits, mnist5k or FILE.npz; default: the model's data set.")
@click.option("--inputs", "-n", "count", type=click.IntRange(min=1), default=32, show_default=True, help="Input samples to run.")
@click.option("--min-cosine", type=click.FloatRange(-1.0, 1.0), default=0.99, show_default=True, help="A layer below this cosine fails.")
@click.option("--atol", type=click.FloatRange(min=0.0), help="A layer fails when a value is off by more than atol + rtol*|reference|.")
@click.option("--rtol", type=click.FloatRange(min=0.0), help="See --atol.")
@click.option("--fail-fast", is_flag=True, help="Stop at the first failing layer.")
@click.option("--html", "html_out", type=click.Path(dir_okay=False, path_type=Path), help="Also write a self-contained HTML page.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON instead of a table.")
def debug_command(model, target, backend, quantize, calibration, optimize, dataset, count, min_cosine, atol, rtol, fail_fast, html_out, as_json):
    """Compare every layer of MODEL's conversion with the float reference, on the same inputs.

    Names the first layer whose error is beyond tolerance and, for int8
    layers, whether calibration clipped its values. Exit 1 when a layer fails
    (or an int8 aot bundle is not bit-exact with TFLM).
    """
    from edgekit.debug.debugger import debug
    from edgekit.debug.metrics import Tolerance

    result = debug(
        model, target, backend, quantize, calibration, dataset, count,
        Tolerance(min_cosine=min_cosine, atol=atol, rtol=rtol), fail_fast, registry_uri(), optimize=optimize,
    )  # fmt: skip
    if html_out is not None:
        from edgekit.compare import write_text_atomic
        from edgekit.debug.html import render_html

        write_text_atomic(html_out, render_html(result))
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
    else:
        from edgekit.debug.table import render_text

        click.echo(render_text(result))
        if html_out is not None:
            click.echo(f"wrote {html_out}")
    if not result.ok:
        click.get_current_context().exit(1)
