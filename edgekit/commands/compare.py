"""`edgekit compare`: benchmark reports side by side, with deltas against a baseline."""

from __future__ import annotations

import json
from pathlib import Path

import click

from edgekit import compare as comparing


@click.command("compare")
@click.argument("reports", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--baseline",
    type=click.Path(path_type=Path),
    help="The report deltas are measured against (default: the first one).",
)
@click.option(
    "--html",
    "html_out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the table as a self-contained HTML page.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON instead of a table.")
def compare_command(reports, baseline, html_out, as_json):
    """Compare benchmark reports (edgekit.report/1 JSON) side by side.

    One column per report; rows are latency, throughput, memory, accuracy,
    fidelity and device counts where the reports have them. Cells of the
    other columns show the change against the baseline, absolute and relative.
    """
    comparison = comparing.compare_files(list(reports), baseline)
    if html_out is not None:
        comparing.write_text_atomic(html_out, comparing.render_html(comparison))
    if as_json:
        click.echo(json.dumps(comparison.to_json(), indent=2))
    else:
        click.echo(comparing.render_text(comparison))
    if html_out is not None and not as_json:
        click.echo(f"\nwrote {html_out}")
