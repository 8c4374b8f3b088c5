"""The `qemu` and `serial` runner kinds: a microcontroller speaking edgekit's serial protocol.

`qemu` starts the emulated board with the artifact's firmware (or, with
--port, talks to one already started by `edgekit flash`); `serial` needs the
real board's port. Without one, nothing runs on this host in its place.
"""

from __future__ import annotations

from edgekit.core import Artifact, RunOptions, Runner
from edgekit.placement import PlacementError


def check(target, options: RunOptions) -> None:
    if target.runner == "serial" and not options.port:
        raise PlacementError(
            f"target {target.name} is a board on a serial port: give --port (e.g. /dev/ttyACM0); "
            "to run TFLM's interpreter or the aot bundle on this machine, use --target host-cpu"
        )


def open_runner(artifact: Artifact, target, options: RunOptions) -> Runner:
    try:
        from edgekit.device.runner import open_runner as open_device
    except ImportError as exc:
        raise PlacementError(
            f"running on {target.name} needs pyserial ({exc.name} is missing): pip install 'edgekit[firmware]'"
        ) from None
    return open_device(artifact, target, options)
