"""`edgekit agent`: join this machine to a Ray cluster as a farm node advertising its boards."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import click

from edgekit.errors import EdgekitError


@click.command("agent")
@click.option("--ray", "address", required=True, metavar="HOST:PORT", help="The Ray head to join (its GCS address).")
@click.option(
    "--device", "specs", multiple=True, metavar="TARGET[:WHERE]",
    help="A board on this machine: nucleo-l4r5zi:/dev/ttyACM0, jetson-orin-nano:ssh://user@host, mps2-an386. Repeat.",
)
@click.option("--num-cpus", type=click.IntRange(min=1), help="Cells this node runs at once (default: its CPU count).")
@click.option("--node-ip-address", metavar="IP", help="This machine's address as the cluster should reach it.")
@click.option("--dry-run", is_flag=True, help="Print the `ray start` command and its environment; start nothing.")
def agent_command(address, specs, num_cpus, node_ip_address, dry_run):
    """Join a Ray cluster as a node that offers these devices to `bench --matrix --executor ray`."""
    from edgekit.farm import devices

    args = devices.node_args(list(specs), num_cpus or os.cpu_count() or 1)
    command = [
        _ray_cli(), "start", "--address", address, "--num-cpus", str(args["num_cpus"]),
        "--resources", json.dumps(args["resources"], sort_keys=True), "--block",
    ]
    if node_ip_address:
        command += ["--node-ip-address", node_ip_address]
    if dry_run:
        for name, value in args["env_vars"].items():
            click.echo(f"{name}={value}")
        click.echo(shlex.join(command))
        return
    click.echo(f"joining {address} with {', '.join(args['resources']) or 'no devices'} "
               f"and {args['num_cpus']} CPU(s); Ctrl-C leaves the cluster")
    # the raylet inherits this environment, and the workers running cells inherit it from the raylet
    env = {**os.environ, **args["env_vars"]}
    try:
        code = subprocess.call(command, env=env)
    except KeyboardInterrupt:
        code = 0
    if code:
        raise EdgekitError(f"ray start exited with status {code}")


def _ray_cli() -> str:
    """The `ray` command of the Python running edgekit (so both import the same edgekit)."""
    beside = Path(sys.executable).with_name("ray")
    found = str(beside) if beside.is_file() else shutil.which("ray")
    if found is None:
        raise EdgekitError("ray is not installed: install it with `pip install 'edgekit[farm]'`")
    return found
