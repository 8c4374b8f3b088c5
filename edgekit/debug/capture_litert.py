"""LiteRT's view: every activation tensor of a .tflite, read after invoke with preserved tensors.

`experimental_preserve_all_tensors` keeps intermediates from being reused
(and runs the built-in kernels without the default XNNPACK delegate, whose
internal tensors would not be readable).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from edgekit._lazy import require
from edgekit._quiet import native_output_hidden
from edgekit.debug import tflite_graph
from edgekit.debug.capture import Capture, to_input
from edgekit.errors import InvalidModelError


def capture_litert(path: Path, samples: list[list[np.ndarray]]) -> Capture:
    """Run each sample (one float array per model input, batch 1) and keep every activation."""
    model = tflite_graph.read(path)
    slots = tflite_graph.activation_slots(model)
    litert = require("ai_edge_litert.interpreter", "tflite")
    try:
        with native_output_hidden(), warnings.catch_warnings():
            # LiteRT warns that preserving every tensor is for debugging: it is
            warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors")
            interpreter = litert.Interpreter(model_path=str(path), experimental_preserve_all_tensors=True)
            interpreter.allocate_tensors()
    except ValueError as exc:
        raise InvalidModelError(f"{path}: LiteRT cannot load this model ({exc})") from None
    inputs = [s for s in slots if s.position == -1]
    values: dict[int, list[np.ndarray]] = {s.index: [] for s in slots}
    for sample in samples:
        for slot, x in zip(inputs, sample):
            interpreter.set_tensor(slot.index, to_input(x, slot.dtype, slot.scale, slot.zero_point))
        interpreter.invoke()
        for slot in slots:
            values[slot.index].append(np.array(interpreter.get_tensor(slot.index), copy=True))
    return tflite_graph.capture_of("litert", model, slots, values)
