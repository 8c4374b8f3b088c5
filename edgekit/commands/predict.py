from __future__ import annotations

from pathlib import Path

import click

from edgekit.commands._options import conversion_options, registry_uri, run_options, runner_options


@click.command("predict")
@click.argument("model")
@conversion_options
@click.option("--input", "-i", "input_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Inputs as .npy, batch on the first axis, in the model's input dtype or float32.")
@click.option("--output", "-o", "output_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to save the raw outputs (.npy).")
@runner_options
def predict_command(model, target, backend, quantize, calibration, optimize, input_path, output_path, **runner):
    """Run the inputs in a .npy through the converted MODEL and save the raw outputs."""
    from edgekit import placement, targets
    from edgekit.pipeline import artifact_for
    from edgekit.predict import predict_file

    options = run_options(runner)
    options.registry = registry_uri()
    the_target = targets.get(target)
    placement.reachable(the_target, options)  # refuse before converting anything
    artifact, _ = artifact_for(model, target, backend, quantize, calibration, registry_uri(), optimize=optimize)
    with placement.place(artifact, the_target, options) as runner:
        count = predict_file(runner, input_path, output_path)
    click.echo(f"wrote {count} outputs to {output_path}")
