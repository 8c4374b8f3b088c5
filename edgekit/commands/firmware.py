"""`edgekit firmware`, `edgekit build`, `edgekit flash`: from a model to a running board."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import click

from edgekit.commands._options import conversion_options, registry_uri


@click.command("firmware")
@click.argument("model")
@conversion_options
@click.option("--out", "-o", required=True, type=click.Path(file_okay=False, path_type=Path), help="Project folder to write.")
@click.option("--template", metavar="NAME", help="Firmware template; default: the first serving the backend on the target.")
@click.option("--build", "build_it", is_flag=True, help="Build the project too and report flash and RAM.")
@click.option("--force", is_flag=True, help="Replace OUT even if it is not an edgekit firmware project.")
def firmware_command(model, target, backend, quantize, calibration, optimize, out, template, build_it, force):
    """Render a firmware project for MODEL (a model or a converted artifact) on an MCU target."""
    from edgekit import firmware, targets
    from edgekit.pipeline import artifact_for

    the_target = targets.get(target)
    artifact, _ = artifact_for(model, target, backend, quantize, calibration, registry_uri(), optimize=optimize)
    project = firmware.render(artifact, the_target, out, template=template, force=force)
    click.echo(f"rendered {project.manifest['template']} for {the_target.name} into {out}")
    if build_it:
        _report_build(project)
    else:
        click.echo(f"build it with: edgekit build {out}")


@click.command("build")
@click.argument("project", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--jobs", "-j", type=click.IntRange(min=1), help="Parallel compile jobs; default: all cores.")
def build_command(project, jobs):
    """Build a rendered firmware PROJECT; report flash and RAM against the target's budgets."""
    from edgekit import firmware

    _report_build(firmware.Project.open(project), jobs)


def _report_build(project, jobs=None):
    from edgekit import firmware

    sizes = firmware.build(project, jobs)
    click.echo(f"built {project.elf}")
    click.echo(f"{project.target}: {sizes.summary()}")


@click.command("flash")
@click.argument("firmware_path", metavar="FIRMWARE", type=click.Path(exists=True, path_type=Path))
@click.option("--target", "-t", metavar="TARGET", help="Target name; default: the project's target.")
@click.option("--port", metavar="PORT", help="The board's serial port (arduino-cli, esptool); for QEMU, the TCP port to listen on.")
def flash_command(firmware_path, target, port):
    """Flash FIRMWARE (a built project folder or an ELF) onto a board, or start it on the emulated board."""
    from edgekit import firmware, targets
    from edgekit.device import flashers
    from edgekit.errors import EdgekitError

    elf = firmware_path
    if firmware_path.is_dir():
        project = firmware.Project.open(firmware_path)
        if target is not None and targets.get(target).name != project.target:
            raise EdgekitError(f"{firmware_path} was built for {project.target}, not {target}: render it for {target}")
        target = target or project.target
        elf = project.elf
        if not elf.is_file():
            raise EdgekitError(f"{firmware_path} is not built yet: run `edgekit build {firmware_path}` first")
    if target is None:
        raise click.UsageError("give --target for an ELF file")
    the_target = targets.get(target)
    board = flashers.flash(elf, the_target, port=port)
    if board is None:
        click.echo(f"flashed {elf} onto {the_target.name}")
        return
    click.echo(f"emulated {the_target.name} runs {elf}")
    click.echo(f"its UART: {board.url}  (e.g. edgekit bench MODEL --target {the_target.name} --port {board.url})")
    click.echo("Ctrl-C stops it")
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        while board.problem() is None:
            time.sleep(0.5)
        raise EdgekitError(board.problem())
    except KeyboardInterrupt:
        pass
    finally:
        board.stop()


def _stop_on_sigterm(signum, frame):
    raise KeyboardInterrupt  # leave through the `finally` that stops QEMU
