"""Options shared by the commands that convert: one definition, so they cannot drift."""

from __future__ import annotations

import click

from edgekit import backends
from edgekit.core import OPTIMIZE_MODES, QUANTIZATIONS


def conversion_options(func=None, *, target_required: bool = True):
    """--target, --backend, --quantize, --calibration, --optimize: choices come from the registries.

    `@conversion_options(target_required=False)` for a command that checks --target itself.
    """
    if func is None:
        return lambda f: conversion_options(f, target_required=target_required)
    target_help = "Target name (see `edgekit targets`)." + ("" if target_required else " Required unless --matrix.")
    decorators = [
        click.option("--target", "-t", required=target_required, metavar="TARGET", help=target_help),
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


#: runtimes --fallback may name (see edgekit/runners/ssh.py)
FALLBACKS = ("onnxruntime",)


def runner_options(func):
    """Where and how the model runs: the flags every command that runs a model shares.

    The command receives them as keyword arguments; `run_options(kwargs)` turns
    them into the RunOptions placement reads (edgekit/placement.py).
    """
    decorators = [
        click.option("--threads", type=click.IntRange(min=1), help="Host threads for the runner."),
        click.option("--port", metavar="PORT", help="A board's serial port (/dev/ttyACM0, socket://HOST:PORT)."),
        click.option(
            "--serve",
            metavar="HOST:PORT",
            callback=_host_port,
            help="Browser targets: serve the benchmark page here and wait for any browser to open the printed URL.",
        ),
        click.option(
            "--timeout",
            type=click.FloatRange(min=0, min_open=True),
            help="Seconds the device may take to answer one request (default: the runner's).",
        ),
        click.option("--host", metavar="USER@ADDR[:PORT]", callback=_check_host,
                     help="The device's SSH address (targets with an ssh runner: Jetson, Raspberry Pi)."),
        click.option("--ssh-key", type=click.Path(exists=True, dir_okay=False), help="Private key for the device's SSH login."),
        click.option("--known-hosts", type=click.Path(dir_okay=False),
                     help="Known hosts file to check the device's host key against; default ~/.ssh/known_hosts."),
        click.option("--device-python", metavar="PATH", help="The Python on the device; default python3."),
        click.option("--fallback", type=click.Choice(FALLBACKS),
                     help="Where the device lacks the backend's runtime (TensorRT), run its ONNX on this one instead."),
    ]
    for decorator in reversed(decorators):
        func = decorator(func)
    return func


RUNNER_OPTION_NAMES = ("threads", "port", "serve", "timeout", "host", "ssh_key", "known_hosts", "device_python", "fallback")


def _check_host(ctx, param, value):
    """A malformed --host is a usage error (exit 2), caught before anything runs."""
    if value is None:
        return None
    from edgekit.remote.address import AddressError, parse

    try:
        parse(value)
    except AddressError as exc:
        raise click.BadParameter(str(exc)) from None
    return value


def _host_port(ctx, param, value):
    if value is None:
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise click.BadParameter(f"{value!r} is not HOST:PORT (e.g. 127.0.0.1:8765, 0.0.0.0:8765)")
    return value


def run_options(kwargs: dict):
    """The RunOptions for a command's runner flags (popped from `kwargs`)."""
    from edgekit.core import RunOptions

    return RunOptions(**{name: kwargs.pop(name) for name in RUNNER_OPTION_NAMES})


def registry_uri() -> str | None:
    ctx = click.get_current_context()
    return (ctx.find_root().obj or {}).get("registry")
