"""One cell, run wherever it lands: this process (local executor) or a Ray worker.

The cell converts through the cache (a recipe another cell converted is
found in the store), benchmarks with `edgekit.bench.run.bench`, and logs
the report to the registry, tagged with the cell's identity, before it
returns. A board the cell needs is taken from the node's advertised devices
(Ray) or from the suite (local).
"""

from __future__ import annotations

import contextlib
import platform
import sys
import time

from edgekit.errors import EdgekitError
from edgekit.farm import devices
from edgekit.farm.matrix import CELL_TAG, Cell


def run(cell: Cell, registry_uri: str | None, where: str | None = None) -> dict:
    """Benchmark the cell; {report, node, seconds}, or {error, node} for a failure it can name."""
    from edgekit import targets
    from edgekit.bench.harness import BenchSettings
    from edgekit.bench.run import bench
    from edgekit.core import RunOptions

    started = time.monotonic()
    node = node_name()
    try:
        target = targets.get(cell.target)
        place = contextlib.nullcontext(where or "") if where is not None or not cell.needs_device else devices.claim(target)
        with place as device:
            options = devices.with_device(RunOptions(threads=cell.options.threads), target, device)
            settings = BenchSettings(**cell.options.to_json())
            report = bench(
                cell.model, cell.target, backend=cell.backend, quantization=cell.quantization,
                calibration=cell.calibration, settings=settings, options=options,
                registry_uri=registry_uri, log=True, tags={CELL_TAG: cell.id},
            )
    except EdgekitError as exc:
        return {"error": str(exc), "node": node}
    return {"report": report, "node": node, "seconds": time.monotonic() - started}


def run_json(cell: dict, registry_uri: str | None) -> dict:
    """The Ray task's body: plain data in and out, so nothing but edgekit itself has to be pickled."""
    return run(Cell.from_json(cell), registry_uri)


def node_name() -> str:
    """This machine's name, and on Ray the node's id (several nodes can share a machine)."""
    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        return f"{platform.node()}/{ray.get_runtime_context().get_node_id()}"
    return platform.node()
