"""The resident memory a runner adds to this process, for host runners' reports.

The process that benchmarks also holds the harness, the data set and often
TensorFlow (1.2 GiB for a 20 KB model), so its peak RSS says nothing about
the model. What a user deploying the model pays is what loading and running
it adds: the peak resident set between "runtime imported, model not loaded"
and the end of the timed runs, less the resident set at the start. On Linux
the kernel's high-water mark (VmHWM) is reset at the start (`clear_refs`),
so the peak is the window's own; elsewhere the resident set at the end of the
window stands in for the peak, and the report says which basis it used.

Board and device runners never report host memory: the board reports its own.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

# the device-side program measures its own model the same way: one implementation for both
from edgekit.link.device import reset_peak, status_kib


def preload(modules: tuple[str, ...]) -> None:
    """Import a backend's runtime before the window opens: the library is not the model's cost."""
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            pass  # the runner's own load names the missing extra


@dataclass
class MemoryWindow:
    start_kib: int | None
    peak_resets: bool

    @classmethod
    def open(cls) -> MemoryWindow:
        start = status_kib("VmRSS")
        return cls(start, start is not None and reset_peak())

    def close(self) -> dict:
        """`model_rss_bytes` and its basis; empty where this OS gives no resident-set figures."""
        if self.start_kib is None:
            return {}
        end = status_kib("VmHWM" if self.peak_resets else "VmRSS")
        if end is None:
            return {}
        return {
            "model_rss_bytes": max(0, end - self.start_kib) * 1024,
            "model_rss_basis": "peak" if self.peak_resets else "end",
        }
