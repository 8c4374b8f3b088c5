from __future__ import annotations

from pathlib import Path

import click

from edgekit.commands._options import conversion_options, registry_uri


@click.command("predict")
@click.argument("model")
@conversion_options
@click.option("--input", "-i", "input_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Inputs as .npy, batch on the first axis, in the model's input dtype or float32.")
@click.option("--output", "-o", "output_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to save the raw outputs (.npy).")
@click.option("--threads", type=click.IntRange(min=1), help="Host threads for the runner.")
@click.option("--port", metavar="PORT", help="A board's serial port (/dev/ttyACM0, socket://HOST:PORT).")
def predict_command(model, target, backend, quantize, calibration, input_path, output_path, threads, port):
    """Run the inputs in a .npy through the converted MODEL and save the raw outputs."""
    from edgekit.pipeline import artifact_for, open_runner
    from edgekit.predict import predict_file

    artifact, _ = artifact_for(model, target, backend, quantize, calibration, registry_uri())
    with open_runner(artifact, target, threads=threads, port=port) as runner:
        count = predict_file(runner, input_path, output_path)
    click.echo(f"wrote {count} outputs to {output_path}")
