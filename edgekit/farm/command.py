"""`edgekit bench --matrix SUITE`: the CLI's side of a matrix (the flags it must not mix with)."""

from __future__ import annotations

import click

#: bench flags that a suite file states instead (its `bench:` block, models, targets...)
_SUITE_OWNED = ("model", "target", "backend", "quantize", "calibration", "dataset", "limit", "out", "port", "threads")


def run_from_cli(ctx: click.Context, suite, executor: str, resume: bool) -> None:
    from edgekit.commands._options import registry_uri
    from edgekit.farm.run import finish, run_matrix

    given = [
        name for name in _SUITE_OWNED
        if ctx.params.get(name) is not None
        and ctx.get_parameter_source(name) != click.core.ParameterSource.DEFAULT
    ]
    given += [name for name in ("runs", "warmup", "no_log")
              if ctx.get_parameter_source(name) != click.core.ParameterSource.DEFAULT]
    if given:
        flags = ", ".join("MODEL" if n == "model" else "--" + n.replace("_", "-") for n in given)
        raise click.UsageError(f"--matrix takes its models, targets and bench options from the suite file, not {flags}")
    result = run_matrix(suite, executor, resume=resume, registry_uri=registry_uri())
    finish(result, registry_uri(), click.echo)
