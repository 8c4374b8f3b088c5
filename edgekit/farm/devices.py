"""Devices as Ray resources: what a node advertises, and which of its boards a cell takes.

A node that has boards plugged in is started by `edgekit agent` with one
custom resource per target, `device:<target>`, counting its boards of that
target, and with the boards' ports or addresses in its environment
(`EDGEKIT_FARM_DEVICES`, JSON: target -> list of places). Ray then runs a
cell that needs a board only on such a node, and never more cells at once
than it has boards; on the node the cell takes one free board under a
file lock, so two cells never share one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import fields, replace
from pathlib import Path

from edgekit import targets
from edgekit.core import RunOptions
from edgekit.errors import EdgekitError

ENV = "EDGEKIT_FARM_DEVICES"
PREFIX = "device:"
#: runner kinds whose target is a physical device: a cell for it runs only where the device is
PHYSICAL_RUNNERS = ("serial", "ssh")
#: runner kind -> the RunOptions field that says where its device is
WHERE_FIELD = {"serial": "port", "qemu": "port", "ssh": "host"}


def resource(target: str) -> str:
    return f"{PREFIX}{target}"


def parse(spec: str) -> tuple[str, str]:
    """`TARGET[:WHERE]` -> (target name, where): `nucleo-l4r5zi:/dev/ttyACM0`, `mps2-an386`."""
    name, _, where = spec.partition(":")
    target = targets.get(name)  # unknown target: one line listing the choices
    if not where and target.runner in PHYSICAL_RUNNERS:
        example = "/dev/ttyACM0" if target.runner == "serial" else "ssh://user@host"
        raise EdgekitError(f"device {spec!r}: {target.name} is reached over {target.runner}: give {target.name}:{example}")
    if where:
        _where_field(target)
    return target.name, where


def _where_field(target) -> str:
    name = WHERE_FIELD.get(target.runner)
    if name is None or name not in {f.name for f in fields(RunOptions)}:
        raise EdgekitError(
            f"target {target.name} runs models through a '{target.runner}' runner, which takes no "
            "device address in this edgekit"
        )
    return name


def node_args(specs: list[str], num_cpus: int) -> dict:
    """The node's Ray arguments for these devices: CPUs, custom resources, and its environment."""
    places: dict[str, list[str]] = {}
    for spec in specs:
        name, where = parse(spec)
        if where in places.get(name, []):
            raise EdgekitError(f"device {spec!r} is given twice")
        places.setdefault(name, []).append(where)
    return {
        "num_cpus": num_cpus,
        "resources": {resource(name): len(found) for name, found in places.items()},
        "env_vars": {ENV: json.dumps(places, sort_keys=True)},
    }


def here() -> dict[str, list[str]]:
    """The devices this node advertises (from its environment)."""
    text = os.environ.get(ENV)
    return json.loads(text) if text else {}


def with_device(options: RunOptions, target, where: str) -> RunOptions:
    """`options` with the device's port or address set, where the runner takes one."""
    return replace(options, **{_where_field(target): where}) if where else options


@contextlib.contextmanager
def claim(target) -> Iterator[str]:
    """Hold one of this node's boards of `target` for the duration: yields its port or address."""
    places = here().get(target.name)
    if not places:
        raise EdgekitError(f"this node advertises no {target.name} (its {ENV} lists none)")
    # keyed by the port, not the node: two nodes on one machine naming one port share one board
    folder = Path(tempfile.gettempdir()) / "edgekit-farm-locks"
    folder.mkdir(exist_ok=True)
    if "" in places:
        # an emulated board: each cell starts its own, so there is nothing to share (Ray's count
        # of the node's resource is the limit); a lock would also tie nodes on one machine together
        yield ""
        return
    for where in places:
        digest = hashlib.sha256(f"{target.name}\0{where}".encode()).hexdigest()[:16]
        handle = open(folder / f"{digest}.lock", "a")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        try:
            yield where
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
            handle.close()
        return
    # Ray gives a node no more such cells than it advertises boards: all busy means another
    # process on this node holds one outside the farm
    raise EdgekitError(f"every {target.name} on this node is busy ({', '.join(places)})")
