"""TFLM's view: the interpreter with every tensor preserved, read by index after invoke.

TFLM's Python interpreter has a `kPreserveAllTensors` mode in which tensors
are not overlapped in the arena, and `GetTensor(index, subgraph)` returns any
of them; so no model surgery is needed. The arena grows until the model
allocates (nothing is shared, so it is larger than the measured one).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit._lazy import require
from edgekit.debug import tflite_graph
from edgekit.debug.capture import Capture, to_input
from edgekit.errors import EdgekitError

_FIRST_ARENA_BYTES = 256 * 1024
_ARENA_ATTEMPTS = 6  # doubling each time: up to 64x the first guess


def open_preserving(path: Path, model):
    runtime = require("tflite_micro.python.tflite_micro.runtime", "tflm")
    activations = sum(
        int(np.prod(t.shape, dtype=np.int64)) * np.dtype(t.dtype).itemsize
        for t in model.tensors
        if t.data is None and t.dtype in ("int8", "uint8", "int16", "int32", "float32", "int64", "bool")
    )
    arena = 2 * activations + _FIRST_ARENA_BYTES
    error = None
    for _ in range(_ARENA_ATTEMPTS):
        try:
            return runtime.Interpreter.from_file(
                str(path), arena_size=arena, intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors
            )
        except RuntimeError as exc:
            error = exc
            arena *= 2
    raise EdgekitError(f"{path}: TFLM could not allocate the model with every tensor preserved ({error})")


def capture_tflm(path: Path, samples: list[list[np.ndarray]]) -> Capture:
    """Run each sample (one float array per model input, batch 1) and keep every activation."""
    model = tflite_graph.read(path)  # validated before TFLM, which trusts its model, reads it
    slots = tflite_graph.activation_slots(model)
    interpreter = open_preserving(path, model)
    inputs = [s for s in slots if s.position == -1]
    values: dict[int, list[np.ndarray]] = {s.index: [] for s in slots}
    for sample in samples:
        for k, (slot, x) in enumerate(zip(inputs, sample)):
            interpreter.set_input(to_input(x, slot.dtype, slot.scale, slot.zero_point).reshape(slot.shape), k)
        try:
            interpreter.invoke()
        except RuntimeError as exc:
            raise EdgekitError(f"{path}: TFLM failed to run the model ({exc})") from None
        for slot in slots:
            tensor = interpreter.GetTensor(slot.index, 0)
            data = np.asarray(tensor["tensor_data"]).reshape(slot.shape)
            values[slot.index].append(np.array(data, dtype=slot.dtype, copy=True))
    return tflite_graph.capture_of("tflm", model, slots, values)
