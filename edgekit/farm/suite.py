"""The suite file: which models, targets, backends, quantizations and bench options make a matrix.

Checked whole before anything runs: an unknown key, target or model is one
line naming the file, the place and the nearest valid name.

    models: [kws, ./models/vww.keras]      # registry names (name[:version]) or files
    targets: [host-cpu, mps2-an386]
    backends: [aot]                        # optional; default: each target's first
    quantizations: [none, int8]            # optional; default: each target's
    calibration: digits                    # optional; int8 calibration data
    bench: {runs: 20, warmup: 2, dataset: digits, limit: 50, threads: 1}
    retries: 2                             # attempts after the first, for a failed or lost cell
    unschedulable_after: 60                # seconds a cell may wait for a node with its device
    devices: {nucleo-l4r5zi: /dev/ttyACM0} # the local executor's boards (Ray: `edgekit agent`)
    html: matrix.html                      # optional compare page, beside the suite file
"""

from __future__ import annotations

import difflib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from edgekit import backends, targets
from edgekit.core import QUANTIZATIONS
from edgekit.errors import EdgekitError, UnknownChoiceError

KEYS = (
    "models", "targets", "backends", "quantizations", "calibration", "bench",
    "retries", "unschedulable_after", "devices", "html",
)
BENCH_KEYS = ("runs", "warmup", "dataset", "limit", "threads")
_MODEL_SUFFIXES = (".keras", ".h5", ".hdf5", ".onnx", ".tflite")


class SuiteError(EdgekitError):
    """A suite file that cannot be run; the message names the file and the place."""


@dataclass(frozen=True)
class BenchOptions:
    """The bench options every cell of a matrix shares (part of a cell's identity)."""

    runs: int = 20
    warmup: int = 2
    dataset: str | None = None
    limit: int | None = None
    threads: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Suite:
    path: Path
    models: list[str]
    targets: list[str]
    backends: list[str | None]
    quantizations: list[str | None]
    calibration: str | None = None
    bench: BenchOptions = field(default_factory=BenchOptions)
    retries: int = 1
    unschedulable_after: float = 60.0
    devices: dict[str, str] = field(default_factory=dict)
    html: Path | None = None


def nearest(name: str, choices) -> str:
    """` (did you mean 'x'?)` for the closest choice, or nothing."""
    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


class _Reader:
    def __init__(self, path: Path, data: dict):
        self.path = path
        self.data = data

    def fail(self, where: str, problem: str) -> SuiteError:
        return SuiteError(f"{self.path}: {where}: {problem}")

    def names(self, key: str, *, required: bool) -> list:
        value = self.data.get(key)
        if value is None:
            if required:
                raise self.fail(key, "is required: list at least one")
            return [None]
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
            raise self.fail(key, f"must be a non-empty list of names, got {value!r}")
        duplicates = sorted({v for v in value if value.count(v) > 1})
        if duplicates:
            raise self.fail(key, f"lists {', '.join(duplicates)} more than once")
        return value

    def count(self, where: str, value: Any, minimum: int) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(where, f"must be an integer >= {minimum}, got {value!r}")
        return value


def load(path: Path, registry_uri: str | None = None, *, check_models: bool = True) -> Suite:
    """Read and check a suite file; models are resolved (files made absolute, names looked up)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SuiteError(f"{path}: cannot read the suite file ({exc.strerror or exc})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise SuiteError(f"{path}: not valid YAML{where} ({getattr(exc, 'problem', None) or exc})") from None
    if not isinstance(data, dict):
        raise SuiteError(f"{path}: a suite file is a mapping with at least 'models' and 'targets'")
    r = _Reader(path, data)
    for key in data:
        if key not in KEYS:
            raise r.fail(f"key '{key}'", f"unknown{nearest(key, KEYS)}; keys: {', '.join(KEYS)}")

    target_names = [_target(r, name, i) for i, name in enumerate(r.names("targets", required=True))]
    chosen_backends = r.names("backends", required=False)
    for i, name in enumerate(chosen_backends):
        if name is not None and name not in backends.names():
            raise r.fail(f"backends[{i}]", f"unknown backend '{name}'{nearest(name, backends.names())}")
    quantizations = r.names("quantizations", required=False)
    for i, name in enumerate(quantizations):
        if name is not None and name not in QUANTIZATIONS:
            raise r.fail(f"quantizations[{i}]", f"unknown quantization '{name}'{nearest(name, QUANTIZATIONS)}")
    models = r.names("models", required=True)
    if check_models:
        models = [_model(r, ref, i, registry_uri) for i, ref in enumerate(models)]

    devices = data.get("devices") or {}
    if not isinstance(devices, dict):
        raise r.fail("devices", f"must map a target to its port or address, got {devices!r}")
    for name, where in devices.items():
        _target(r, name, None, key=f"devices.{name}")
        if not isinstance(where, str) or not where:
            raise r.fail(f"devices.{name}", f"must be a port or address, got {where!r}")

    wait = data.get("unschedulable_after", 60)
    if isinstance(wait, bool) or not isinstance(wait, (int, float)) or wait <= 0:
        raise r.fail("unschedulable_after", f"must be a positive number of seconds, got {wait!r}")
    html = data.get("html")
    if html is not None and (not isinstance(html, str) or not html.endswith(".html")):
        raise r.fail("html", f"must be a file name ending in .html, got {html!r}")
    calibration = data.get("calibration")
    if calibration is not None and not isinstance(calibration, str):
        raise r.fail("calibration", f"must be a data set name or an .npz file, got {calibration!r}")
    return Suite(
        path=path,
        models=models,
        targets=target_names,
        backends=chosen_backends,
        quantizations=quantizations,
        calibration=_relative_file(path, calibration),
        bench=_bench(r),
        retries=r.count("retries", data.get("retries", 1), 0),
        unschedulable_after=float(wait),
        devices=dict(devices),
        html=(path.parent / html) if html else None,
    )


def _target(r: _Reader, name: str, index: int | None, key: str = "targets") -> str:
    where = f"{key}[{index}]" if index is not None else key
    try:
        return targets.get(name).name
    except UnknownChoiceError:
        raise r.fail(where, f"unknown target '{name}'{nearest(name, targets.names())}; see `edgekit targets`") from None


def _relative_file(suite: Path, value: str | None) -> str | None:
    """A file named in the suite is relative to the suite file; a built-in name stays as it is."""
    if value and value.endswith(".npz") and not Path(value).is_absolute():
        return str((suite.parent / value).resolve())
    return value


def _model(r: _Reader, ref: str, index: int, registry_uri: str | None) -> str:
    """An absolute file path, or the registry reference once the registry knows it."""
    where = f"models[{index}]"
    local = r.path.parent / ref
    if Path(ref).is_absolute() or local.exists() or ref.lower().endswith(_MODEL_SUFFIXES) or "/" in ref:
        file = Path(ref) if Path(ref).is_absolute() else local
        if not file.exists():
            raise r.fail(where, f"model file not found: {file}")
        return str(file.resolve())
    from edgekit.pipeline import open_registry

    try:
        open_registry(registry_uri).resolve(ref)
    except UnknownChoiceError as exc:
        raise r.fail(where, f"unknown {exc.kind} '{exc.name}'{nearest(exc.name, exc.choices)}; see `edgekit models`") from None
    except EdgekitError as exc:
        raise r.fail(where, str(exc)) from None
    return ref


def _bench(r: _Reader) -> BenchOptions:
    value = r.data.get("bench") or {}
    if not isinstance(value, dict):
        raise r.fail("bench", f"must be a mapping of {', '.join(BENCH_KEYS)}, got {value!r}")
    for key in value:
        if key not in BENCH_KEYS:
            raise r.fail(f"bench.{key}", f"unknown key{nearest(key, BENCH_KEYS)}; keys: {', '.join(BENCH_KEYS)}")
    defaults = BenchOptions()
    dataset = value.get("dataset")
    if dataset is not None and not isinstance(dataset, str):
        raise r.fail("bench.dataset", f"must be a data set name or an .npz file, got {dataset!r}")
    optional = {k: value.get(k) for k in ("limit", "threads")}
    for key, given in optional.items():
        if given is not None:
            r.count(f"bench.{key}", given, 1)
    return BenchOptions(
        runs=r.count("bench.runs", value.get("runs", defaults.runs), 1),
        warmup=r.count("bench.warmup", value.get("warmup", defaults.warmup), 0),
        dataset=_relative_file(r.path, dataset),
        **optional,
    )
