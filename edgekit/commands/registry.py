"""`edgekit register` and `edgekit models`: add source models to the registry, list them."""

from __future__ import annotations

from pathlib import Path

import click

from edgekit.commands._options import registry_uri


@click.command("register")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--name", "-n", required=True, help="Model name: letters, digits, '-', '_', '.'.")
@click.option(
    "--dataset",
    "-d",
    metavar="DATASET",
    help="Default calibration and evaluation data: digits, mnist5k or FILE.npz.",
)
def register_command(path: Path, name: str, dataset: str | None):
    """Register the model at PATH as the next version of NAME."""
    from edgekit.registry import Registry

    model = Registry(registry_uri()).register(path, name, dataset=dataset)
    click.echo(
        f"registered {model.name} version {model.version} ({model.format}, sha256 {model.sha256[:8]}...)"
    )


@click.command("models")
@click.argument("name", required=False)
def models_command(name: str | None):
    """List registered models and their versions (only NAME's, if given)."""
    from edgekit.registry import Registry

    registry = Registry(registry_uri())
    rows = registry.list_models(name)
    if not rows:
        click.echo(f"no models in {registry.uri}: add one with `edgekit register PATH --name NAME`")
        return
    click.echo(format_table(rows))


COLUMNS = (("NAME", "name"), ("VERSION", "version"), ("FORMAT", "format"),
           ("DATASET", "dataset"), ("SHA256", "sha256"), ("CREATED", "created_at"))


def format_table(rows: list[dict]) -> str:
    cells = [[title for title, _ in COLUMNS]]
    for row in rows:
        values = {**row, "sha256": (row.get("sha256") or "")[:12]}
        cells.append([str(values.get(key) or "-") for _, key in COLUMNS])
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip() for line in cells
    )
