"""Expand a suite into cells, dropping the impossible ones with the reason.

A cell is one benchmark: a model converted by one recipe, run on one target
with the suite's bench options. Its identity is (recipe key, target, bench
options), hashed into `Cell.id`: the registry run of a finished cell carries
it (tag `edgekit.cell`), which is how a resumed matrix knows what is done and
how a retried cell is never logged twice.
"""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import json
from dataclasses import asdict, dataclass
from types import SimpleNamespace

from edgekit import placement
from edgekit.errors import EdgekitError
from edgekit.farm import devices
from edgekit.farm.suite import BenchOptions, Suite

CELL_TAG = "edgekit.cell"


@dataclass(frozen=True)
class Cell:
    model: str
    target: str
    backend: str
    quantization: str
    calibration: str | None
    recipe_key: str
    options: BenchOptions
    #: runs only on a node that advertises `device:<target>` (a board plugged in there)
    needs_device: bool = False

    @property
    def id(self) -> str:
        identity = {"recipe": self.recipe_key, "target": self.target, "bench": self.options.to_json()}
        return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:24]

    @property
    def label(self) -> str:
        return f"{_short(self.model)} on {self.target} ({self.backend}, {self.quantization})"

    def to_json(self) -> dict:
        return asdict(self) | {"options": self.options.to_json()}

    @classmethod
    def from_json(cls, data: dict) -> Cell:
        return cls(**(data | {"options": BenchOptions(**data["options"])}))


@dataclass(frozen=True)
class Dropped:
    model: str
    target: str
    backend: str | None
    quantization: str | None
    reason: str

    @property
    def label(self) -> str:
        return f"{_short(self.model)} on {self.target} ({self.backend or 'default backend'}, {self.quantization or 'default quantization'})"


def _short(model: str) -> str:
    return model.rsplit("/", 1)[-1]


def expand(suite: Suite, registry_uri: str | None, *, advertised: set[str] | None = None) -> tuple[list[Cell], list[Dropped]]:
    """Every (model, target, backend, quantization) of the suite as a cell or a dropped cell.

    `advertised`: the targets some node offers as a device (Ray); None runs
    everything here (the local executor), where a board needs its place in
    the suite's `devices`.
    """
    from edgekit.core import RunOptions
    from edgekit.pipeline import plan_conversion

    cells: dict[str, Cell] = {}
    dropped: list[Dropped] = []
    combos = itertools.product(suite.models, suite.targets, suite.backends, suite.quantizations)
    for model, target, backend, quantization in combos:
        try:
            plan = plan_conversion(model, target, backend, quantization, suite.calibration, registry_uri)
            # placement decides on the backend's name alone: no artifact is needed to ask it
            placement.check(SimpleNamespace(backend=plan.backend.name), plan.target)
            runner = plan.target.runner
            if advertised is None:
                options = devices.with_device(RunOptions(), plan.target, suite.devices.get(target, ""))
                placement.reachable(plan.target, options)
                needs_device = False
            else:
                _has_runner_kind(plan.target)
                needs_device = runner in devices.PHYSICAL_RUNNERS or target in advertised
        except EdgekitError as exc:
            dropped.append(Dropped(model, target, backend, quantization, str(exc)))
            continue
        cell = Cell(
            model=model,
            target=plan.target.name,
            backend=plan.backend.name,
            quantization=plan.recipe.quantization,
            calibration=suite.calibration,
            recipe_key=plan.recipe.key(),
            options=suite.bench,
            needs_device=needs_device,
        )
        cells.setdefault(cell.id, cell)  # a default backend or quantization may repeat an explicit one
    return list(cells.values()), dropped


def _has_runner_kind(target) -> None:
    """Refuse a runner kind this edgekit lacks (its device is checked where it is, not here)."""
    module = f"edgekit.runners.{placement.RUNNER_KINDS[target.runner]}"
    if importlib.util.find_spec(module) is None:
        raise placement.PlacementError(
            f"target {target.name} runs models through a '{target.runner}' runner, which this edgekit does not have"
        )
