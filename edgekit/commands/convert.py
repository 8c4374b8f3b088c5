from __future__ import annotations

from pathlib import Path

import click

from edgekit.commands._options import conversion_options, registry_uri


@click.command("convert")
@click.argument("model")
@conversion_options
@click.option("--out", "-o", type=click.Path(file_okay=False, path_type=Path), help="Also copy the artifact here.")
def convert_command(model, target, backend, quantize, calibration, optimize, out):
    """Convert MODEL (name[:version] from the registry, or a file) for a target."""
    from edgekit.pipeline import convert

    result = convert(model, target, backend, quantize, calibration, registry_uri(), out, optimize=optimize)
    artifact = result.artifact
    how = "cached" if result.cached else "converted"
    click.echo(
        f"{how} {result.source.ref} for {result.target.name} with {artifact.backend} "
        f"({artifact.recipe['quantization']}): {artifact.path / artifact.primary}"
    )
    for line in artifact.info.get("summary", []):
        click.echo(f"  {line}")
    if out:
        click.echo(f"wrote {out}")
