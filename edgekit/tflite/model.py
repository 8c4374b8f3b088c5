"""What reading a .tflite gives: the model's tensors and operators as plain, read-only records."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgekit.errors import InvalidModelError


class ModelCheckError(InvalidModelError):
    """A model failed one named check; `check` is that check's name (e.g. 'tensor_indices')."""

    def __init__(self, check: str, message: str):
        super().__init__(message)
        self.check = check


@dataclass(frozen=True)
class Quantization:
    scale: np.ndarray  # float32, shape (n,), all finite and > 0
    zero_point: np.ndarray  # int64, shape (n,)
    axis: int  # quantized_dimension when per-channel (n > 1); 0 when per-tensor


@dataclass(frozen=True)
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str  # numpy dtype name ('float32', 'int8', ...); 'int4', 'bfloat16', 'string' kept raw
    data: np.ndarray | None  # constant data, typed, shaped and read-only; None for activations
    quantization: Quantization | None
    is_variable: bool
    shape_signature: tuple[int, ...] | None = None  # as stored; -1 marks a run-time dimension


@dataclass(frozen=True)
class Operator:
    index: int
    opcode: str  # builtin name ('CONV_2D'), or 'CUSTOM:<custom_code>'
    version: int
    inputs: tuple[int, ...]  # -1 marks an absent optional input
    outputs: tuple[int, ...]
    options: dict  # decoded builtin options, schema field names, enums as strings, defaults filled


@dataclass(frozen=True)
class Model:
    version: int
    description: str
    tensors: tuple[Tensor, ...]
    operators: tuple[Operator, ...]  # subgraph 0, in execution order
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    subgraph_count: int

    def ops_used(self) -> list[str]:
        """Distinct opcodes, in the order they are first used."""
        return list(dict.fromkeys(op.opcode for op in self.operators))

    def tensor(self, i: int) -> Tensor:
        return self.tensors[i]
