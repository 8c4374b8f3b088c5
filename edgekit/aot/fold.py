"""Compile-time folding: operators whose every input is known before the model runs become constants.

Converters leave shape arithmetic in graphs. Keras' `Reshape` of a tensor
with a run-time batch becomes SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE
(EfficientNet's squeeze-excite blocks, MobileNetV3's head). A bundle has one
fixed shape per tensor (the file's `shape`, which is also what TFLM allocates),
so SHAPE's output is known at compile time, and so is every operator computed
only from it and from constants. Those operators are evaluated here, in numpy;
their outputs become constant tensors and the operators leave the graph: no
code, no arena.

Only exact operations fold: data movement (any element type, when the output
keeps the input's quantization) and integer arithmetic on unquantized
tensors. A result is kept only when its shape is the one the file gives the
output tensor and its values fit the output's type; otherwise the operator
stays (and the compiler reports it if no emitter takes it).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable

import numpy as np

from edgekit.aot.graph import Graph, Node, TensorInfo

Value = np.ndarray
#: folder(node, graph, input values) -> the output's value, or None when it cannot fold exactly
Folder = Callable[[Node, Graph, list], "Value | None"]

_INTEGER = ("int8", "uint8", "int16", "int32", "int64")


def _same_quantization(a: TensorInfo, b: TensorInfo) -> bool:
    if a.quantized != b.quantized:
        return False
    if not a.quantized:
        return True
    return (
        np.array_equal(a.scale, b.scale) and np.array_equal(a.zero_point, b.zero_point) and a.axis == b.axis
    )


def _moves_data(node: Node, graph: Graph) -> bool:
    """A data-movement result is exact when the values keep their meaning: the same quantization."""
    out = graph.tensors[node.outputs[0]]
    return all(_same_quantization(graph.tensors[t], out) for t in node.inputs[:1] if t >= 0)


def _shape(node: Node, graph: Graph, values: list) -> Value:
    return np.array(graph.tensors[node.inputs[0]].shape, dtype=np.int64)


def _strided_slice(node: Node, graph: Graph, values: list) -> Value | None:
    """TFLite's STRIDED_SLICE (strided_slice_logic.h: StridedSliceStartForAxis / EndForAxis) with
    begin and end masks, shrink_axis_mask and offset; ellipsis and new-axis masks are left unfolded,
    and so is a shrunk axis with a stride other than 1 (TensorFlow never writes one)."""
    data, begin, end, strides = values
    o = node.options
    if o.get("ellipsis_mask") or o.get("new_axis_mask") or not len(begin) == len(end) == len(strides) == data.ndim:
        return None
    index = []
    for axis, size in enumerate(data.shape):
        bit, stride = 1 << axis, int(strides[axis])
        if stride == 0:
            return None
        lo, hi = (0, size) if stride > 0 else (-1, size - 1)
        start = int(begin[axis])
        start = min(max(start + size if start < 0 else start, lo), hi)
        if o.get("begin_mask", 0) & bit:
            start = 0 if stride > 0 else size - 1
        if o.get("shrink_axis_mask", 0) & bit:
            if stride != 1 or start >= size:
                return None
            index.append(start)
            continue
        stop = int(end[axis]) + (start if o.get("offset") else 0)
        stop = min(max(stop + size if stop < 0 else stop, lo), hi)
        if o.get("end_mask", 0) & bit:
            stop = size if stride > 0 else -1
        if stride < 0 and start == -1:
            index.append(slice(0, 0))  # empty; Python would read -1 as the last element
        else:
            index.append(slice(start, None if stop == -1 and stride < 0 else stop, stride))
    return np.asarray(data[tuple(index)])


def _pack(node: Node, graph: Graph, values: list) -> Value | None:
    out = graph.tensors[node.outputs[0]]
    if not all(_same_quantization(graph.tensors[t], out) for t in node.inputs):
        return None
    return np.stack(values, axis=int(node.option("axis", 0)))


def _concatenation(node: Node, graph: Graph, values: list) -> Value | None:
    if node.option("fused_activation_function", "NONE") != "NONE":
        return None
    if not all(_same_quantization(graph.tensors[t], graph.tensors[node.outputs[0]]) for t in node.inputs):
        return None
    return np.concatenate(values, axis=int(node.option("axis", 0)))


def _reshape(node: Node, graph: Graph, values: list) -> Value:
    return values[0].reshape(graph.tensors[node.outputs[0]].shape)


def _slice(node: Node, graph: Graph, values: list) -> Value | None:
    data, begin, size = values
    index = []
    for axis in range(data.ndim):
        b, n = int(begin[axis]), int(size[axis])
        if b < 0 or b > data.shape[axis]:
            return None
        index.append(slice(b, data.shape[axis] if n == -1 else b + n))
    return np.asarray(data[tuple(index)])


def _cast(node: Node, graph: Graph, values: list) -> Value | None:
    source, target = graph.tensors[node.inputs[0]].dtype, graph.tensors[node.outputs[0]].dtype
    if source not in _INTEGER or target not in _INTEGER:
        return None  # float <-> int casts: the runtime's rounding, not numpy's
    return values[0].astype(np.int64)


def _arithmetic(function) -> Folder:
    def fold(node: Node, graph: Graph, values: list) -> Value | None:
        tensors = [graph.tensors[t] for t in (*node.inputs, node.outputs[0])]
        if any(t.dtype not in ("int32", "int64") or t.quantized for t in tensors):
            return None
        if node.option("fused_activation_function", "NONE") != "NONE":
            return None
        return function(*(v.astype(np.int64) for v in values))

    return fold


#: opcode -> (folder, whether it only moves data and needs the output to keep the quantization)
FOLDERS: dict[str, tuple[Folder, bool]] = {
    "SHAPE": (_shape, False),
    "STRIDED_SLICE": (_strided_slice, True),
    "SLICE": (_slice, True),
    "PACK": (_pack, False),
    "CONCATENATION": (_concatenation, False),
    "RESHAPE": (_reshape, True),
    "SQUEEZE": (_reshape, True),
    "EXPAND_DIMS": (_reshape, True),
    "CAST": (_cast, False),
    "ADD": (_arithmetic(np.add), False),
    "SUB": (_arithmetic(np.subtract), False),
    "MUL": (_arithmetic(np.multiply), False),
}


def _known_inputs(node: Node, graph: Graph) -> list | None:
    """The values of the node's inputs, or None if one is only known at run time.
    SHAPE needs its input's shape only, never its values."""
    if node.opcode == "SHAPE":
        return []
    values = []
    for t in node.inputs:
        if t < 0 or graph.tensors[t].data is None:
            return None
        values.append(np.asarray(graph.tensors[t].data))
    return values


def _fits(value: np.ndarray, out: TensorInfo) -> bool:
    if tuple(value.shape) != tuple(out.shape):
        return False
    if out.dtype in _INTEGER and value.dtype.kind in "iu" and value.size:
        info = np.iinfo(out.dtype)
        return bool(value.min() >= info.min and value.max() <= info.max)
    return value.dtype == np.dtype(out.dtype)


def fold_constants(graph: Graph) -> Graph:
    """The graph with every foldable operator evaluated: its output a constant, the operator gone.

    Model outputs are never folded (a bundle writes them), so a graph whose
    result is itself constant keeps its last operator.
    """
    tensors = dict(graph.tensors)
    kept: list[Node] = []
    view = Graph(graph.name, tensors, kept, graph.inputs, graph.outputs)
    for node in graph.nodes:
        entry = FOLDERS.get(node.opcode)
        outs = [t for t in node.outputs if t >= 0]
        value = None
        if entry is not None and len(outs) == 1 and outs[0] not in graph.outputs:
            folder, moves_data = entry
            values = _known_inputs(node, view)
            if values is not None and (not moves_data or _moves_data(node, view)):
                value = folder(node, view, values)
        out = tensors[outs[0]] if outs else None
        if value is None or not _fits(value, out):
            kept.append(node)
            continue
        tensors[out.index] = replace(out, data=np.array(value, dtype=out.dtype).reshape(out.shape))
    return Graph(graph.name, tensors, kept, graph.inputs, graph.outputs)
