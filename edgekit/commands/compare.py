"""`edgekit compare`: benchmark reports side by side, with honest deltas, a page and CI gates."""

from __future__ import annotations

import json
from pathlib import Path

import click

from edgekit.commands._options import registry_uri
from edgekit.compare import gates, layout as layouts, sources
from edgekit.errors import EdgekitError


def _rules(ctx, param, values):
    """Parse every --fail-on now, so a malformed rule is a usage error before any work."""
    try:
        return [gates.parse(v) for v in values]
    except gates.RuleError as exc:
        raise click.BadParameter(f"{exc}\n{gates.GRAMMAR}", ctx=ctx, param=param) from None


@click.command("compare")
@click.argument("reports", nargs=-1, type=click.Path(path_type=Path))
@click.option("--model", "-m", "model_ref", metavar="NAME[:VERSION]",
              help="Compare the registry's benchmark runs of this model (as well as any REPORTS).")
@click.option("--target", "-t", metavar="TARGET", help="Only reports benchmarked on this target.")
@click.option(
    "--baseline",
    metavar="REPORT|RUN",
    help="The report changes are measured against: a file, or a registry run id (default: the first).",
)
@click.option("--by", type=click.Choice(layouts.GROUP_FIELDS), help="Group reports by this fact.")
@click.option("--layout", type=click.Choice(layouts.LAYOUTS), default="auto", show_default=True,
              help=f"wide: a column per report; rows: a row per report (auto: wide up to {layouts.WIDE_MAX}).")
@click.option("--fail-on", "rules", multiple=True, metavar="RULE", callback=_rules,
              help="Exit 1 when a report breaks RULE, e.g. 'p99>+5%', 'top1<-0.5pt', 'flash>90%budget'.")
@click.option(
    "--html",
    "html_out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write a self-contained HTML page: the table, charts and provenance.",
)
@click.option("--markdown", "as_markdown", is_flag=True, help="Print the table as Markdown (for a pull request).")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON instead of a table.")
def compare_command(reports, model_ref, target, baseline, by, layout, rules, html_out, as_markdown, as_json):
    """Compare benchmark reports (edgekit.report/1 JSON) side by side.

    Rows are latency, throughput, accuracy, fidelity, memory against the
    target's budget and device counts where the reports have them. Latency
    changes carry a 95% bootstrap confidence interval from the stored
    samples; latencies from different machines or clocks are not subtracted.
    """
    if as_json and as_markdown:
        raise click.UsageError("choose one of --json and --markdown")
    if not reports and not model_ref:
        raise click.UsageError("give report files, or --model NAME[:VERSION] to read the registry")
    found = sources.from_files(list(reports))
    if model_ref:
        found += sources.from_registry(model_ref, registry_uri())
    if target:
        found = sources.on_target(found, target)
    found, index = sources.pick_baseline(found, baseline)
    comparison = sources.compare_sources(found, index)
    outcomes = gates.check(comparison, rules)

    if html_out is not None:
        from edgekit.compare import page

        text = page.render_html(comparison, layout=layout, by=by, outcomes=outcomes)
        page.write_text_atomic(html_out, text)
    if as_json:
        data = comparison.to_json()
        if rules:
            data["gates"] = [o.to_json() for o in outcomes]
        click.echo(json.dumps(data, indent=2))
    elif as_markdown:
        click.echo(layouts.render_markdown(comparison, layout, by), nl=False)
        if outcomes:
            lines = gates.summary(outcomes).splitlines()
            items = [f"  - {line.strip()}" if line.startswith(" ") else f"- {line}" for line in lines]
            click.echo("\n**Gates**\n\n" + "\n".join(items))
    else:
        click.echo(layouts.render_text(comparison, layout, by))
        if outcomes:
            click.echo("\ngates:\n" + gates.summary(outcomes))
    if html_out is not None and not as_json and not as_markdown:
        click.echo(f"\nwrote {html_out}")
    failure = gates.failure_message(outcomes)
    if failure:
        raise EdgekitError(failure)
