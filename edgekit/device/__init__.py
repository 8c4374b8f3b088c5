"""Boards over a serial line: the benchmark protocol's host side, QEMU, flashing.

`open_runner(artifact, target, options)` is what the aot and tflm backends
call for targets whose runner is a device (serial or qemu).
"""

from __future__ import annotations


def open_runner(artifact, target, options=None):
    """A Runner that infers on the board (imported lazily: pyserial only when used)."""
    from edgekit.device.runner import open_runner as _open

    return _open(artifact, target, options)


__all__ = ["open_runner"]
