"""Options shared by the commands that convert: one definition, so they cannot drift."""

from __future__ import annotations

import click

from edgekit import backends
from edgekit.core import QUANTIZATIONS


def conversion_options(func):
    """--target, --backend, --quantize, --calibration: choices come from the registries."""
    decorators = [
        click.option("--target", "-t", required=True, metavar="TARGET", help="Target name (see `edgekit targets`)."),
        click.option("--backend", "-b", type=click.Choice(backends.names()), help="Backend; default: the target's first."),
        click.option("--quantize", "-q", type=click.Choice(QUANTIZATIONS), help="Quantization; default: the target's."),
        click.option(
            "--calibration",
            metavar="DATASET",
            help="int8 calibration data: digits, mnist5k or FILE.npz; default: the model's registered data set.",
        ),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def registry_uri() -> str | None:
    ctx = click.get_current_context()
    return (ctx.find_root().obj or {}).get("registry")
