"""Where cells run: `local` (one after another in this process, no Ray) or `ray` (a cluster).

Both answer the same few questions for the scheduler in run.py: which
devices the nodes advertise, how many cells can run at once, start a cell,
wait for finished ones, is a cell's device missing from every node, cancel.
A finished cell is a `Finished`: its result, or a failure it named, or
`lost` (the process or node running it died), which the scheduler retries.
"""

from __future__ import annotations

import logging
import os
import traceback
from collections import deque
from dataclasses import dataclass
from itertools import count

from edgekit.errors import EdgekitError
from edgekit.farm import cell as cells
from edgekit.farm import devices
from edgekit.farm.matrix import Cell


@dataclass
class Finished:
    handle: int
    result: dict | None = None
    error: str | None = None
    lost: bool = False


def _bug(exc: BaseException) -> str:
    """A failure edgekit did not name: its type, message and where it happened, on one line."""
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f" at {os.path.basename(frame.filename)}:{frame.lineno}" if frame else ""
    return f"{type(exc).__name__}: {exc}{where}"


class LocalExecutor:
    """Cells one at a time in this process; boards from the suite's `devices`."""

    name = "local"

    def __init__(self, registry_uri: str | None, places: dict[str, str]):
        self.registry_uri = registry_uri
        self.places = places
        self._ids = count()
        self._pending: deque[tuple[int, Cell]] = deque()

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def advertised(self) -> set[str] | None:
        return None  # everything runs here

    def capacity(self) -> int:
        return 1

    def missing_device(self, cell: Cell, resources=None) -> bool:
        return False

    def resources(self):
        return None

    def device_slots(self, cell: Cell, resources=None) -> int | None:
        return None  # no limit beyond running one cell at a time

    def submit(self, cell: Cell) -> int:
        handle = next(self._ids)
        self._pending.append((handle, cell))
        return handle

    def wait(self, timeout: float) -> list[Finished]:
        if not self._pending:
            return []
        handle, cell = self._pending.popleft()
        try:
            result = cells.run(cell, self.registry_uri, self.places.get(cell.target, ""))
        except Exception as exc:  # a bug in one cell must not lose the others' results
            return [Finished(handle, error=_bug(exc))]
        return [Finished(handle, result=result, error=result.get("error"))]

    def cancel(self, handle: int) -> None:
        self._pending = deque(item for item in self._pending if item[0] != handle)


class RayExecutor:
    """Cells as Ray tasks: one CPU each, plus `device:<target>` for a cell that needs a board."""

    name = "ray"

    def __init__(self, registry_uri: str | None, address: str | None = None):
        self.registry_uri = registry_uri
        self.address = address
        self._ray = None
        self._owned = False
        self._ids = count()
        self._refs: dict[int, object] = {}

    def open(self) -> None:
        from edgekit._lazy import require

        ray = require("ray", "farm")
        if not ray.is_initialized():
            kwargs = {"log_to_driver": False, "logging_level": logging.ERROR}
            if self.address is None and not os.environ.get("RAY_ADDRESS"):
                kwargs["include_dashboard"] = False  # a new single-machine instance
            try:
                ray.init(address=self.address, **kwargs)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = self.address or os.environ.get("RAY_ADDRESS") or "a new local instance"
                raise EdgekitError(f"cannot reach the Ray cluster at {where}: {str(exc).splitlines()[0]}") from None
            self._owned = True
        self._ray = ray
        # plain data in and out; the body is edgekit's own code, imported on the node
        self._task = ray.remote(cells.run_json)

    def close(self) -> None:
        if self._ray is not None and self._owned:
            self._ray.shutdown()
        self._ray = None

    def resources(self) -> dict:
        return self._ray.cluster_resources()

    def advertised(self) -> set[str]:
        return {key[len(devices.PREFIX):] for key in self.resources() if key.startswith(devices.PREFIX)}

    def capacity(self) -> int:
        # as many cells in flight as the cluster has CPUs: then "in flight" means running
        return max(1, int(self.resources().get("CPU", 1)))

    def missing_device(self, cell: Cell, resources=None) -> bool:
        resources = self.resources() if resources is None else resources
        return cell.needs_device and resources.get(devices.resource(cell.target), 0) <= 0

    def device_slots(self, cell: Cell, resources=None) -> int | None:
        """How many cells of this cell's device can run at once across the cluster (None: no device)."""
        if not cell.needs_device:
            return None
        resources = self.resources() if resources is None else resources
        return int(resources.get(devices.resource(cell.target), 0))

    def submit(self, cell: Cell) -> int:
        handle = next(self._ids)
        resources = {devices.resource(cell.target): 1} if cell.needs_device else {}
        # lost cells are retried by the scheduler, which first checks the registry for their report
        task = self._task.options(num_cpus=1, resources=resources, max_retries=0)
        self._refs[handle] = task.remote(cell.to_json(), self.registry_uri)
        return handle

    def wait(self, timeout: float) -> list[Finished]:
        if not self._refs:
            return []
        ray = self._ray
        by_ref = {ref: handle for handle, ref in self._refs.items()}
        ready, _ = ray.wait(list(by_ref), num_returns=len(by_ref), timeout=timeout, fetch_local=True)
        finished = []
        for ref in ready:
            handle = by_ref[ref]
            del self._refs[handle]
            try:
                result = ray.get(ref)
            except ray.exceptions.RayTaskError as exc:  # raised inside the cell: a bug, named
                finished.append(Finished(handle, error=_bug(exc.cause) if exc.cause else str(exc).splitlines()[0]))
            except ray.exceptions.TaskCancelledError:
                finished.append(Finished(handle, error="cancelled"))
            except ray.exceptions.RayError as exc:  # the worker or its node died: the cell is lost
                finished.append(Finished(handle, error=f"{type(exc).__name__}: {str(exc).splitlines()[0]}", lost=True))
            else:
                finished.append(Finished(handle, result=result, error=result.get("error")))
        return finished

    def cancel(self, handle: int) -> None:
        ref = self._refs.pop(handle, None)
        if ref is not None:
            self._ray.cancel(ref, force=True)


def make(spec: str, registry_uri: str | None, places: dict[str, str]):
    """`local`, `ray` (RAY_ADDRESS, else a new local instance) or `ray://HOST:PORT`."""
    if spec == "local":
        return LocalExecutor(registry_uri, places)
    if spec == "ray":
        return RayExecutor(registry_uri)
    if spec.startswith("ray://"):
        return RayExecutor(registry_uri, spec)
    raise EdgekitError(f"unknown executor {spec!r}: use local, ray or ray://HOST:PORT")
