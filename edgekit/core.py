"""The types every part of edgekit shares: tensors, artifacts, runners, quantization names.

A converter writes an `Artifact` (a folder and its manifest); placement opens
a `Runner` on it, in this process or on a device; every runner describes its
inputs and outputs as `TensorSpec`s. Nothing here imports a backend, a target
or anything heavy, so any module can depend on it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from edgekit.errors import EdgekitError

QUANTIZATIONS = ("none", "fp16", "dynamic", "int8")
#: what a backend's generated code is tuned for (`--optimize`; only backends with a choice take it)
OPTIMIZE_MODES = ("speed", "balanced", "size")


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a converted model.

    `shape` keeps -1 for a dynamic dimension (usually the batch). `scale` and
    `zero_point` are the tensor's affine quantization when it is quantized
    (real = scale * (q - zero_point)); None for float tensors.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    scale: float | None = None
    zero_point: int | None = None

    @property
    def quantized(self) -> bool:
        return self.scale is not None

    def to_json(self) -> dict:
        return asdict(self) | {"shape": list(self.shape)}

    @classmethod
    def from_json(cls, data: dict) -> TensorSpec:
        return cls(**(data | {"shape": tuple(data["shape"])}))


@dataclass
class RunOptions:
    """How to run an artifact: host threads, a serial port for a real board, an SSH device, a browser
    page to serve, the registry whose store keeps what running needs (built firmware)."""

    threads: int | None = None
    port: str | None = None
    #: HOST:PORT where a browser target's page is served for any browser to open (instead of headless Chromium)
    serve: str | None = None
    #: seconds a device-side program may take to answer one request (None: the runner's default)
    timeout: float | None = None
    registry: str | None = None
    host: str | None = None  # user@addr[:port] of a device reached over SSH
    ssh_key: str | None = None
    known_hosts: str | None = None
    device_python: str | None = None
    fallback: str | None = None  # the runtime to use where the backend's own is absent (onnxruntime)


class Runner:
    """Runs a converted model: `infer(feed) -> outputs`, both keyed by tensor name.

    Subclasses set `name`, `inputs` and `outputs`, and implement `_infer`.
    A runner that measures time on the device itself (a board over serial)
    returns it from `device_timing`, and the harness reports that instead
    of host wall-clock time.
    """

    name: str = "runner"
    #: where memory() figures come from: `host-process` (this process), `device` (a board's
    #: flash, RAM, arena, stack) or `device-process` (the program running the model on a device)
    memory_scope: str = "host-process"
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]

    def infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.check_feed(feed)
        return self._infer(feed)

    def check_feed(self, feed: dict[str, np.ndarray]) -> None:
        expected = {spec.name: spec for spec in self.inputs}
        if set(feed) != set(expected):
            raise EdgekitError(
                f"inputs given: {sorted(feed)}; the model takes: {sorted(expected)}"
            )
        for name, value in feed.items():
            spec = expected[name]
            if np.dtype(value.dtype) != np.dtype(spec.dtype):
                raise EdgekitError(
                    f"input '{name}' is {value.dtype}, the model takes {spec.dtype}"
                )
            if not shape_matches(value.shape, spec.shape):
                raise EdgekitError(
                    f"input '{name}' has shape {tuple(value.shape)}, the model takes "
                    f"{tuple(spec.shape)} (-1: any size)"
                )

    def _infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def device_timing(self) -> dict[str, float] | None:
        """Timing of the last inference as measured by the device, if it measures it.

        Keys: `ms` (required), and where known `cycles`, `instructions`.
        """
        return None

    def memory(self) -> dict[str, Any]:
        """Memory facts the runtime or the device knows (arena, flash, RAM, ...), for the report."""
        return {}

    def environment(self) -> dict[str, Any] | None:
        """The report's `env` when the model runs on another machine, read there; None: this machine."""
        return None

    def show_report(self, report: dict) -> None:
        """Hand the finished report to the device, for one that can show it (a browser page)."""

    def close(self) -> None:
        pass

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def with_quantization_of(specs: list[TensorSpec], originals: list[TensorSpec]) -> list[TensorSpec]:
    """`specs` in order, each given its original's scale and zero point where the runtime lost them.

    ONNX has no per-tensor scale on a graph's integer inputs and outputs, and a
    device-side runtime may not report one: the artifact's interface keeps them.
    """
    if len(specs) != len(originals):
        return specs
    return [
        TensorSpec(s.name, s.shape, s.dtype, o.scale, o.zero_point)
        if o.quantized and not s.quantized and s.dtype == o.dtype else s
        for s, o in zip(specs, originals)
    ]


def shape_matches(actual: tuple[int, ...], expected: tuple[int, ...]) -> bool:
    return len(actual) == len(expected) and all(
        e == -1 or a == e for a, e in zip(actual, expected)
    )


@dataclass
class Artifact:
    """A converted model on disk: a folder with the files and `artifact.json`."""

    MANIFEST: ClassVar[str] = "artifact.json"
    SCHEMA: ClassVar[str] = "edgekit.artifact/1"

    path: Path
    backend: str
    recipe: dict[str, Any]
    recipe_key: str
    primary: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    files: list[str]
    sha256: str
    info: dict[str, Any] = field(default_factory=dict)
    source: dict[str, Any] = field(default_factory=dict)

    @property
    def primary_path(self) -> Path:
        return self.path / self.primary

    def manifest(self) -> dict[str, Any]:
        return {
            "schema": self.SCHEMA,
            "backend": self.backend,
            "recipe": self.recipe,
            "recipe_key": self.recipe_key,
            "primary": self.primary,
            "inputs": [s.to_json() for s in self.inputs],
            "outputs": [s.to_json() for s in self.outputs],
            "files": self.files,
            "sha256": self.sha256,
            "info": self.info,
            "source": self.source,
        }

    def save(self) -> None:
        (self.path / self.MANIFEST).write_text(json.dumps(self.manifest(), indent=2) + "\n")

    @classmethod
    def is_artifact(cls, path: Path) -> bool:
        return (Path(path) / cls.MANIFEST).is_file()

    @classmethod
    def load(cls, path: Path) -> Artifact:
        path = Path(path)
        try:
            data = json.loads((path / cls.MANIFEST).read_text())
        except (OSError, ValueError) as exc:
            raise EdgekitError(f"{path} is not an edgekit artifact ({exc})") from None
        if data.get("schema") != cls.SCHEMA:
            raise EdgekitError(
                f"{path / cls.MANIFEST}: schema {data.get('schema')!r} is not {cls.SCHEMA}"
            )
        return cls(
            path=path,
            backend=data["backend"],
            recipe=data["recipe"],
            recipe_key=data["recipe_key"],
            primary=data["primary"],
            inputs=[TensorSpec.from_json(s) for s in data["inputs"]],
            outputs=[TensorSpec.from_json(s) for s in data["outputs"]],
            files=data["files"],
            sha256=data["sha256"],
            info=data.get("info", {}),
            source=data.get("source", {}),
        )
