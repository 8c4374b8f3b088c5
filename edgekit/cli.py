"""The `edgekit` command: a thin click layer over the library.

Subcommands live in `edgekit/commands/<name>.py` and are imported only when
run, so `edgekit --help` never pays for TensorFlow or MLflow. User errors
(`EdgekitError`) become one line on stderr and exit 1; bad flags are click
usage errors (exit 2); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import importlib
import sys

import click

from edgekit.errors import EdgekitError

# name -> (module under edgekit.commands, one-line help shown by --help)
COMMANDS = {
    "register": ("registry", "Register a source model as a new version."),
    "models": ("registry", "List registered models and their versions."),
    "targets": ("targets", "List targets, or show one."),
    "convert": ("convert", "Convert a model for a target (cached by recipe)."),
    "bench": ("bench", "Benchmark a model or artifact on a target; write a report."),
    "predict": ("predict", "Run inputs from a .npy file through a converted model."),
    "compare": ("compare", "Compare benchmark reports: table, HTML page, CI gates."),
    "debug": ("debug", "Find the layer where a conversion drifts from the reference."),
    "ui": ("ui", "Open MLflow's web UI on the registry."),
    "agent": ("agent", "Join a Ray cluster as a farm node that offers its boards."),
    "firmware": ("firmware", "Render a firmware project for a board."),
    "build": ("firmware", "Build a rendered firmware project; report flash and RAM."),
    "flash": ("firmware", "Flash a firmware onto a board or the emulated board."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx):
        return list(COMMANDS)

    def get_command(self, ctx, name):
        if name not in COMMANDS:
            return None
        module_name, _ = COMMANDS[name]
        module = importlib.import_module(f"edgekit.commands.{module_name}")
        return getattr(module, name.replace("-", "_") + "_command")

    def format_commands(self, ctx, formatter):
        # list the commands from the table, without importing their modules
        rows = [(name, help_) for name, (_, help_) in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="edgekit")
@click.option(
    "--registry",
    envvar="EDGEKIT_REGISTRY",
    metavar="URI",
    help="Model registry: a folder (default .edgekit/) or an MLflow tracking URI.",
)
@click.pass_context
def cli(ctx, registry):
    """Take a trained model to edge and embedded hardware, and measure how it runs there."""
    ctx.obj = {"registry": registry}


def main(argv=None):
    try:
        code = cli.main(args=argv, prog_name="edgekit", standalone_mode=False)
        # outside standalone mode click hands back ctx.exit(N)'s code instead of exiting
        if isinstance(code, int) and code:
            sys.exit(code)
    except EdgekitError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
