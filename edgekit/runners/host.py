"""The `host` runner kind: the backend's own runner, in this process, on this machine."""

from __future__ import annotations

from edgekit import backends
from edgekit.core import Artifact, RunOptions, Runner
from edgekit.placement import PlacementError


def check(target, options: RunOptions) -> None:
    if options.port:
        raise PlacementError(
            f"--port {options.port} names a board, but target {target.name} runs on this host: "
            "choose the board's target (see `edgekit targets`)"
        )
    if options.host:
        raise PlacementError(
            f"--host {options.host} names a device reached over ssh, but target {target.name} runs on this "
            "host: choose the device's target (jetson-*, rpi4, rpi5, or your own target file)"
        )


def open_runner(artifact: Artifact, target, options: RunOptions) -> Runner:
    return backends.get(artifact.backend).load(artifact, target, options)
