"""The tensors of a .tflite worth capturing: its inputs and every operator output computed from them.

Read with edgekit's validating flatbuffer reader (the one place this package
imports it), so no interpreter sees an unchecked file. Operators fed only by
constants (the DEQUANTIZE of fp16 weights) are left out: their outputs are
weights, not a layer's activations.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgekit.debug.capture import Capture, Captured, per_tensor_quantization, stack


@dataclass(frozen=True)
class Slot:
    """One tensor to capture from a .tflite."""

    index: int
    name: str
    position: int  # operator position, -1 for a model input
    op: str
    shape: tuple[int, ...]
    dtype: str
    scale: float | None
    zero_point: int | None


def read(path: Path):
    from edgekit.tflite.reader import validate_file

    return validate_file(Path(path))


def activation_slots(model) -> list[Slot]:
    """Model inputs, then each operator output that depends on an input, in execution order."""

    def slot(index: int, position: int, op: str) -> Slot:
        tensor = model.tensor(index)
        scale, zero_point = per_tensor_quantization(tensor.quantization)
        shape = tuple(int(d) for d in tensor.shape)
        return Slot(index, tensor.name, position, op, shape, tensor.dtype, scale, zero_point)

    slots = [slot(i, -1, "INPUT") for i in model.inputs]
    live = set(model.inputs)
    for position, op in enumerate(model.operators):
        if not any(i in live for i in op.inputs if i >= 0):
            continue
        for index in op.outputs:
            if index >= 0:
                live.add(index)
                slots.append(slot(index, position, op.opcode))
    return slots


def capture_of(runtime: str, model, slots: list[Slot], values: dict) -> Capture:
    """What an interpreter of the .tflite captured: each slot's values (one array per sample), stacked."""
    return Capture(
        runtime=runtime,
        tensors=[
            Captured(s.name, s.position, s.op, stack(values[s.index]), s.scale, s.zero_point, s.index)
            for s in slots
        ],
        inputs=[model.tensor(i).name for i in model.inputs],
        outputs=[model.tensor(i).name for i in model.outputs],
    )
