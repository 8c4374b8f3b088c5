"""Options shared by the commands that convert: one definition, so they cannot drift."""

from __future__ import annotations

import click

from edgekit import backends
from edgekit.core import OPTIMIZE_MODES, QUANTIZATIONS


def conversion_options(func):
    """--target, --backend, --quantize, --calibration, --optimize: choices come from the registries."""
    decorators = [
        click.option("--target", "-t", required=True, metavar="TARGET", help="Target name (see `edgekit targets`)."),
        click.option("--backend", "-b", type=click.Choice(backends.names()), help="Backend; default: the target's first."),
        click.option("--quantize", "-q", type=click.Choice(QUANTIZATIONS), help="Quantization; default: the target's."),
        click.option(
            "--calibration",
            metavar="DATASET",
            help="int8 calibration data: digits, mnist5k or FILE.npz; default: the model's registered data set.",
        ),
        click.option(
            "--optimize",
            type=click.Choice(OPTIMIZE_MODES),
            help="Generated code for speed, balanced or size (backends that offer it: aot); default: balanced.",
        ),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


def runner_options(func):
    """Where and how the model runs: the flags every command that runs a model shares.

    The command receives them as keyword arguments; `run_options(kwargs)` turns
    them into the RunOptions placement reads (edgekit/placement.py).
    """
    decorators = [
        click.option("--threads", type=click.IntRange(min=1), help="Host threads for the runner."),
        click.option("--port", metavar="PORT", help="A board's serial port (/dev/ttyACM0, socket://HOST:PORT)."),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


RUNNER_OPTION_NAMES = ("threads", "port")


def run_options(kwargs: dict):
    """The RunOptions for a command's runner flags (popped from `kwargs`)."""
    from edgekit.core import RunOptions

    return RunOptions(**{name: kwargs.pop(name) for name in RUNNER_OPTION_NAMES})


def registry_uri() -> str | None:
    ctx = click.get_current_context()
    return (ctx.find_root().obj or {}).get("registry")
