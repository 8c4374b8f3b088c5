"""`edgekit targets` (the list) and `edgekit targets show NAME` (one target, every field)."""

from __future__ import annotations

import json

import click

from edgekit import targets as targets_module
from edgekit.compare import format_bytes, format_table


@click.group("targets", invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print every target as JSON.")
@click.pass_context
def targets_command(ctx, as_json):
    """List the targets edgekit can convert for and benchmark on."""
    if ctx.invoked_subcommand is not None:
        return
    all_targets = targets_module.all_targets()
    if as_json:
        click.echo(json.dumps([t.to_json() for t in all_targets], indent=2))
        return
    rows = [["name", "kind", "cpu", "clock", "flash", "RAM", "backends", "runner"]]
    for t in all_targets:
        rows.append([
            t.name,
            t.kind,
            f"{t.cores}x {t.cpu}" if t.cores > 1 else t.cpu,
            format_clock(t.clock_mhz),
            format_bytes(t.flash_bytes),
            format_bytes(t.ram_bytes),
            ",".join(t.backends),
            t.runner,
        ])
    click.echo(format_table(rows, right_align_from=len(rows[0])))
    aliases = [f"{a} -> {t.name}" for t in all_targets for a in t.aliases]
    if aliases:
        click.echo(f"\naliases: {', '.join(aliases)}")


@targets_command.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the target as JSON.")
def show_command(name, as_json):
    """Show every field of one target (a name or an alias)."""
    target = targets_module.get(name)
    if as_json:
        click.echo(json.dumps(target.to_json(), indent=2))
        return
    click.echo(describe(target))


def format_clock(mhz: float) -> str:
    if mhz >= 1000:
        return f"{mhz / 1000:.3g} GHz"
    return f"{mhz:.4g} MHz"


def describe(target: targets_module.Target) -> str:
    """Every field, human readable: sizes in binary units, addresses in hex."""
    memory_map = target.memory_map
    lines = [
        ("name", target.name),
        ("description", target.description),
        ("kind", target.kind),
        ("arch", target.arch),
        ("cpu", target.cpu),
        ("cores", str(target.cores)),
        ("clock", format_clock(target.clock_mhz)),
        ("flash", _size(target.flash_bytes)),
        ("RAM", _size(target.ram_bytes)),
        ("backends", ", ".join(target.backends) + f"  (default: {target.default_backend})"),
        ("quantization", target.quantization),
        ("runner", target.runner),
        ("features", ", ".join(target.features) or "-"),
    ]
    if memory_map:
        lines.append((
            "memory map",
            f"flash {_region(memory_map['flash_origin'], memory_map['flash_bytes'])}; "
            f"RAM {_region(memory_map['ram_origin'], memory_map['ram_bytes'])}",
        ))
    if target.flash_tool:
        details = ", ".join(f"{k}={v}" for k, v in target.flash_tool.items() if k != "tool")
        lines.append(("flash tool", f"{target.flash_tool['tool']} ({details})" if details else target.flash_tool["tool"]))
    lines.append(("aliases", ", ".join(target.aliases) or "-"))
    lines.append(("source", str(target.source)))
    out = [f"{key + ':':<14}{value}" for key, value in lines]
    if target.extras:
        out.append("extras:")
        out += _nested(target.extras, indent=2)
    return "\n".join(out)


def _size(n: int | None) -> str:
    return "-" if n is None else f"{format_bytes(n)} ({n:,} bytes)"


def _region(origin: int, size: int) -> str:
    return f"0x{origin:08X}..0x{origin + size - 1:08X} ({format_bytes(size)})"


def _is_address(key: str, value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and (
        key.endswith("_base") or key == "origin" or key.endswith("_origin")
    )


def _nested(data: dict, indent: int) -> list[str]:
    out = []
    for key, value in data.items():
        if isinstance(value, dict):
            out.append(" " * indent + f"{key}:")
            out += _nested(value, indent + 2)
        else:
            if isinstance(value, list):
                value = ", ".join(str(v) for v in value)
            elif _is_address(key, value):
                value = f"0x{value:08X}"
            out.append(" " * indent + f"{key}: {value}")
    return out
