"""Run an int8 model on the host in TensorFlow Lite Micro's interpreter (reference kernels).

This is the runner behind `edgekit bench MODEL --target <MCU>` without a board:
the same interpreter and kernels a TFLM firmware runs, so its outputs are the
ones the board computes with reference kernels; accuracy and fidelity come
from here, latency does not (it is the host's).

The TFLM interpreter trusts its model (a crafted file crashes it, a quantized
multiplier out of its range aborts it), so every model is validated by
edgekit's reader and held to TFLM's kernel limits before the interpreter sees it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgekit._lazy import require
from edgekit.core import Runner, TensorSpec
from edgekit.errors import EdgekitError


def validate_model(path: Path, label: str | None = None):
    """edgekit's reader over `path`, then TFLM's kernel limits: the parsed model.

    InvalidModelError names what is wrong with the file; KernelLimitError, what
    in a valid file TFLM's kernels cannot compute (they would abort the process).
    `label` names the file in messages (the user's name for a copy).
    """
    from edgekit.tflite.limits import check_kernel_limits
    from edgekit.tflite.reader import validate_file

    model = validate_file(path)
    check_kernel_limits(model, "tflm", label or Path(path).name)
    return model


def tensor_spec(tensor) -> TensorSpec:
    """A reader Tensor as the TensorSpec reports use (per-tensor scale/zero point only)."""
    quant = tensor.quantization
    per_tensor = quant is not None and len(quant.scale) == 1
    return TensorSpec(
        name=tensor.name,
        shape=tuple(int(d) for d in tensor.shape),
        dtype=tensor.dtype,
        scale=float(quant.scale[0]) if per_tensor else None,
        zero_point=int(quant.zero_point[0]) if per_tensor else None,
    )


def interface(model) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """The model's inputs and outputs, in the order TFLM indexes them."""
    return (
        [tensor_spec(model.tensor(i)) for i in model.inputs],
        [tensor_spec(model.tensor(i)) for i in model.outputs],
    )


def open_interpreter(path: Path, arena_bytes: int):
    """TFLM's Python interpreter over a validated model with an arena of `arena_bytes`."""
    runtime = require("tflite_micro.python.tflite_micro.runtime", "tflm")
    try:
        return runtime.Interpreter.from_file(str(path), arena_size=int(arena_bytes))
    except RuntimeError as exc:
        raise EdgekitError(
            f"{path}: TFLM could not allocate the model in a {arena_bytes:,}-byte arena ({exc}): "
            "convert it again to measure the arena"
        ) from None


class TflmHostRunner(Runner):
    """The int8 model in TFLM's interpreter on this machine."""

    name = "tflm-host"

    def __init__(self, path: Path, arena_bytes: int, memory: dict[str, Any] | None = None):
        self.path = Path(path)
        model = validate_model(self.path)
        self.inputs, self.outputs = interface(model)
        self.arena_bytes = int(arena_bytes)
        self._memory = dict(memory or {}) | {"arena_bytes": self.arena_bytes}
        self.interpreter = open_interpreter(self.path, self.arena_bytes)

    def _infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        for index, spec in enumerate(self.inputs):
            self.interpreter.set_input(np.ascontiguousarray(feed[spec.name]), index)
        try:
            self.interpreter.invoke()
        except RuntimeError as exc:
            raise EdgekitError(f"{self.path}: TFLM failed to run the model ({exc})") from None
        return {
            spec.name: np.array(self.interpreter.get_output(index), copy=True).reshape(spec.shape)
            for index, spec in enumerate(self.outputs)
        }

    def memory(self) -> dict[str, Any]:
        return dict(self._memory)

    def close(self) -> None:
        self.interpreter = None
