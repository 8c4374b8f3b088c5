"""The compiler's view of a model: tensors with resolved facts, operators in execution order.

Built from the reader's `Model`. Nothing here knows C; the planner decides
where activations live and the emitters decide the code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class TensorInfo:
    """One tensor: shape, dtype, quantization and, for a constant, its data."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str  # numpy dtype name: 'int8', 'float32', 'int32', ...
    data: np.ndarray | None = None
    scale: np.ndarray | None = None  # float32, one per channel or one per tensor
    zero_point: np.ndarray | None = None  # int64
    axis: int = 0

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def quantized(self) -> bool:
        return self.scale is not None and len(self.scale) > 0

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def nbytes(self) -> int:
        return self.size * np.dtype(self.dtype).itemsize

    @property
    def per_channel(self) -> bool:
        return self.quantized and len(self.scale) > 1


@dataclass
class Node:
    """One operator: opcode, tensor indices (-1 for an absent optional input), options."""

    index: int
    opcode: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: dict[str, Any] = field(default_factory=dict)

    def option(self, name: str, default: Any = None) -> Any:
        value = self.options.get(name, default)
        return default if value is None else value


@dataclass
class Graph:
    name: str
    tensors: dict[int, TensorInfo]
    nodes: list[Node]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]

    def consumers(self, index: int) -> list[Node]:
        return [n for n in self.nodes if index in n.inputs]

    def producer(self, index: int) -> Node | None:
        for n in self.nodes:
            if index in n.outputs:
                return n
        return None


def _dtype_name(dtype: Any) -> str:
    return np.dtype(dtype).name


def graph_from_model(model, name: str) -> Graph:
    """Adapt the reader's `Model` (tensors, operators, inputs, outputs) to a `Graph`, with the
    operators computable at compile time folded into constants (`fold.fold_constants`)."""
    from edgekit.aot.fold import fold_constants

    tensors: dict[int, TensorInfo] = {}
    for t in model.tensors:
        q = t.quantization
        scale = zero_point = None
        axis = 0
        if q is not None:
            scale = np.asarray(q.scale, dtype=np.float32).reshape(-1)
            zero_point = np.asarray(q.zero_point, dtype=np.int64).reshape(-1)
            axis = int(getattr(q, "axis", 0) or 0)
            if scale.size == 0:
                scale = zero_point = None
        data = t.data
        if data is not None:
            data = np.asarray(data)
        tensors[t.index] = TensorInfo(
            index=t.index,
            name=t.name,
            shape=tuple(int(d) for d in t.shape),
            dtype=_dtype_name(t.dtype),
            data=data,
            scale=scale,
            zero_point=zero_point,
            axis=axis,
        )
    nodes = [
        Node(
            index=i,
            opcode=str(op.opcode),
            inputs=tuple(int(x) for x in op.inputs),
            outputs=tuple(int(x) for x in op.outputs),
            options=dict(op.options or {}),
        )
        for i, op in enumerate(model.operators)
    ]
    return fold_constants(Graph(
        name=name,
        tensors=tensors,
        nodes=nodes,
        inputs=tuple(int(i) for i in model.inputs),
        outputs=tuple(int(i) for i in model.outputs),
    ))
