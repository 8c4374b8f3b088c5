"""One record per TFLite operator edgekit knows: what its kernels assume, and their numeric limits.

Kernels trust the operators they are handed: TFLM divides by channel counts
and strides, indexes weights by the input's shape and fetches required inputs
without a null check, so a file that breaks these assumptions crashes an
interpreter or reads out of bounds. Each operator's record says everything
validate holds it to (its options table, its arity, which inputs may be
absent or per-channel, its type rules, its output shape) and the numeric
limits of kernel families that cannot compute some valid models (limits.py).

An operator without a record gets the format, index and dataflow checks only.
To hold a new operator to its kernels, add its record to `OPERATORS`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from edgekit.tflite import schema as S
from edgekit.tflite.limits import SOFTMAX_INPUT_MULTIPLIER, KernelLimit
from edgekit.tflite.walk import fail, tensor_label

#: dtypes whose tensors must carry a scale and a zero point
QUANTIZED_DTYPES = ("int8", "uint8", "int16")


@dataclass(frozen=True)
class OperatorRule:
    """What validate holds one operator to, and the limits some kernel families add."""

    #: the builtin options table decoded into Operator.options (its union type must match)
    options: S.OptionsTable | None = None
    #: (fewest, most) inputs, most None for no upper bound, and exactly one output;
    #: None leaves the count free, and the type and shape rules unchecked (control flow)
    arity: tuple[int, int | None] | None = None
    #: inputs the kernel accepts as -1 (absent); every other input is required
    optional_inputs: frozenset[int] = frozenset()
    #: inputs that may be quantized per channel; None: any (tensors passed on unchanged)
    per_channel_inputs: frozenset[int] | None = frozenset()
    #: inputs that carry the data (the rest are weights, shapes, axes or paddings); None: every one
    data_inputs: tuple[int, ...] | None = (0,)
    #: for weighted operators (weights at input 1, optional bias at 2): the weights' axis of output channels
    weights_channel_axis: int | None = None
    #: what input 1 holds when it is integers that steer the kernel ("axes", "new shape"...)
    index_input: str | None = None
    #: whether data inputs and output share one type (QUANTIZE and DEQUANTIZE change it)
    same_type: bool = True
    #: (input dtype, output dtype) pairs the kernel also writes, besides the same type
    type_changes: frozenset[tuple[str, str]] = frozenset()
    #: which of "data" and "output" must carry quantization parameters when of a quantized dtype
    scales_on: frozenset[str] = frozenset({"data", "output"})
    #: the output shape the inputs and options give (checking what it can on the way), see below
    output_shape: Callable | None = None
    #: whether the kernel folds a run-time batch into other dimensions (then no shape is exact)
    folds_batch: bool = False
    #: options that name subgraphs this operator calls (IF, WHILE, CALL_ONCE)
    subgraphs: tuple[str, ...] = ()
    #: numeric limits of some kernel families (limits.py); validation never applies them
    limits: tuple[KernelLimit, ...] = ()

    @property
    def weighted(self) -> bool:
        return self.weights_channel_axis is not None

    def data(self, inputs) -> list[int]:
        """The tensor indices among `inputs` that carry data."""
        if self.data_inputs is None:
            return [t for t in inputs if t != -1]
        return [inputs[i] for i in self.data_inputs]


# ----------------------------------------------------------------------------- output shape rules
# Each rule checks what it can and returns the output shape the inputs give, or
# None when that cannot be known from the file. `static` is False when some
# tensor involved has run-time dimensions: the file holds placeholders there,
# so only channel counts, weights and parameters are checked.


def _window_out(size: int, kernel: int, stride: int, dilation: int, padding: str) -> int:
    """Output length of a convolution or pooling window along one axis (TFLite's rule)."""
    effective = (kernel - 1) * dilation + 1
    if padding == "SAME":
        return (size + stride - 1) // stride
    return (size - effective + stride) // stride


def _expect_rank(raw, label, graph, t: int, rank: int) -> tuple[int, ...]:
    shape = graph.tensors[t].shape
    if len(shape) != rank:
        fail("operator_shapes", raw, f"{label} needs {tensor_label(graph, t)} of rank {rank}, "
              f"but its shape is {shape}")
    return shape


def _expect_positive(raw, label, options: dict, *names: str) -> None:
    for name in names:
        if options.get(name, 1) < 1:
            fail("operator_shapes", raw, f"{label} has {name} {options[name]}: it must be >= 1")


def _spatial(raw, label, x, kernel_h, kernel_w, options, dilated: bool, static: bool) -> tuple[int, int]:
    """Output height and width of a window op; (0, 0) when the input's size is known only at run time."""
    _expect_positive(raw, label, options, "stride_w", "stride_h")
    dh = dw = 1
    if dilated:
        _expect_positive(raw, label, options, "dilation_w_factor", "dilation_h_factor")
        dh, dw = options["dilation_h_factor"], options["dilation_w_factor"]
    if kernel_h < 1 or kernel_w < 1:
        fail("operator_shapes", raw, f"{label} has a {kernel_h}x{kernel_w} window: it must be >= 1x1")
    if not static:
        return 0, 0
    h = _window_out(x[1], kernel_h, options["stride_h"], dh, options["padding"])
    w = _window_out(x[2], kernel_w, options["stride_w"], dw, options["padding"])
    if h < 1 or w < 1:
        fail("operator_shapes", raw, f"{label} window {kernel_h}x{kernel_w} does not fit its "
              f"{x[1]}x{x[2]} input")
    return h, w


def _shape_conv(raw, label, graph, op, static: bool) -> tuple[int, ...]:
    x = _expect_rank(raw, label, graph, op.inputs[0], 4)
    f = _expect_rank(raw, label, graph, op.inputs[1], 4)
    if f[3] < 1 or x[3] % f[3] or f[0] % (x[3] // f[3] or 1):
        fail("operator_shapes", raw, f"{label} input channels {x[3]} do not fit filter {f}")
    h, w = _spatial(raw, label, x, f[1], f[2], op.options, dilated=True, static=static)
    return (x[0], h, w, f[0])


def _shape_depthwise(raw, label, graph, op, static: bool) -> tuple[int, ...]:
    x = _expect_rank(raw, label, graph, op.inputs[0], 4)
    f = _expect_rank(raw, label, graph, op.inputs[1], 4)
    if x[3] < 1 or f[0] != 1 or f[3] != x[3] * op.options["depth_multiplier"]:
        fail("operator_shapes", raw, f"{label} filter {f} does not fit {x[3]} input channels with "
              f"depth multiplier {op.options['depth_multiplier']}")
    h, w = _spatial(raw, label, x, f[1], f[2], op.options, dilated=True, static=static)
    return (x[0], h, w, f[3])


def _shape_fully_connected(raw, label, graph, op, static: bool) -> None:
    weights = _expect_rank(raw, label, graph, op.inputs[1], 2)
    units, depth = weights
    if depth < 1:
        fail("operator_shapes", raw, f"{label} has weights of shape {weights}")
    if not static:
        return None
    count = math.prod(graph.tensors[op.inputs[0]].shape)
    if count % depth:
        fail("operator_shapes", raw, f"{label} input of {count} elements does not split into rows of "
              f"weights {weights}")
    out = graph.tensors[op.outputs[0]].shape
    if not out or out[-1] != units or math.prod(out) != count // depth * units:
        fail("operator_shapes", raw, f"{label} output {tensor_label(graph, op.outputs[0])} has shape "
              f"{out}, but {count // depth} rows of weights {weights} give {count // depth * units} "
              f"values in rows of {units}")
    return None  # keep_num_dims decides the rank: checked above by element count


def _shape_pool(raw, label, graph, op, static: bool) -> tuple[int, ...]:
    x = _expect_rank(raw, label, graph, op.inputs[0], 4)
    o = op.options
    h, w = _spatial(raw, label, x, o["filter_height"], o["filter_width"], o, dilated=False, static=static)
    return (x[0], h, w, x[3])


def _shape_same(raw, label, graph, op, static: bool) -> tuple[int, ...]:
    return graph.tensors[op.inputs[0]].shape


def _shape_broadcast(raw, label, graph, op, static: bool) -> tuple[int, ...] | None:
    if not static:
        return None
    a, b = (graph.tensors[t].shape for t in op.inputs[:2])
    try:
        return tuple(np.broadcast_shapes(a, b))
    except ValueError:
        fail("operator_shapes", raw, f"{label} cannot broadcast input shapes {a} and {b}")


def _shape_concat(raw, label, graph, op, static: bool) -> tuple[int, ...]:
    shapes = [graph.tensors[t].shape for t in op.inputs if t != -1]
    rank = len(shapes[0])
    axis = op.options["axis"] + (rank if op.options["axis"] < 0 else 0)
    if not 0 <= axis < rank or any(len(s) != rank for s in shapes):
        fail("operator_shapes", raw, f"{label} joins shapes {shapes} along axis {op.options['axis']}")
    if static and any(s[:axis] + s[axis + 1:] != shapes[0][:axis] + shapes[0][axis + 1:] for s in shapes):
        fail("operator_shapes", raw, f"{label} joins shapes {shapes} that differ off axis {axis}")
    return shapes[0][:axis] + (sum(s[axis] for s in shapes),) + shapes[0][axis + 1:]


def _shape_of_shape(raw, label, graph, op, static: bool) -> tuple[int, ...]:
    return (len(graph.tensors[op.inputs[0]].shape),)


def _shape_pack(raw, label, graph, op, static: bool) -> tuple[int, ...]:
    count, axis = op.options["values_count"], op.options["axis"]
    shapes = [graph.tensors[t].shape for t in op.inputs]
    if count != len(op.inputs):
        fail("operator_shapes", raw, f"{label} packs {count} values but has {len(op.inputs)} inputs")
    rank = len(shapes[0])
    if not -rank - 1 <= axis <= rank:
        fail("operator_shapes", raw, f"{label} packs rank-{rank} values along axis {axis}")
    if static and any(s != shapes[0] for s in shapes):
        fail("operator_shapes", raw, f"{label} packs values of different shapes {shapes}")
    axis += rank + 1 if axis < 0 else 0
    return shapes[0][:axis] + (count,) + shapes[0][axis:]


# ----------------------------------------------------------------------------- the records


def _reducer() -> OperatorRule:
    return OperatorRule(options=S.REDUCER_OPTIONS, arity=(2, 2), index_input="axes")


def _window(options: S.OptionsTable) -> OperatorRule:
    return OperatorRule(options=options, arity=(1, 1), output_shape=_shape_pool)


def _elementwise(options: S.OptionsTable) -> OperatorRule:
    return OperatorRule(options=options, arity=(2, 2), data_inputs=(0, 1), output_shape=_shape_broadcast)


OPERATORS: dict[str, OperatorRule] = {
    "CONV_2D": OperatorRule(
        options=S.CONV_2D_OPTIONS, arity=(2, 3), optional_inputs=frozenset({2}),
        per_channel_inputs=frozenset({1, 2}), weights_channel_axis=0, output_shape=_shape_conv,
    ),
    # TFLM's DEPTHWISE_CONV_2D reads its bias unchecked (SIGSEGV), LiteRT's refuses a missing one,
    # and converters always write one.
    "DEPTHWISE_CONV_2D": OperatorRule(
        options=S.DEPTHWISE_CONV_2D_OPTIONS, arity=(3, 3), per_channel_inputs=frozenset({1, 2}),
        weights_channel_axis=-1, output_shape=_shape_depthwise,
    ),
    "FULLY_CONNECTED": OperatorRule(
        options=S.FULLY_CONNECTED_OPTIONS, arity=(2, 3), optional_inputs=frozenset({2}),
        per_channel_inputs=frozenset({1, 2}), weights_channel_axis=0,
        output_shape=_shape_fully_connected, folds_batch=True,
    ),
    "AVERAGE_POOL_2D": _window(S.POOL_2D_OPTIONS),
    "MAX_POOL_2D": _window(S.POOL_2D_OPTIONS),
    "L2_POOL_2D": _window(S.POOL_2D_OPTIONS),
    "SOFTMAX": OperatorRule(
        options=S.SOFTMAX_OPTIONS, arity=(1, 1), type_changes=frozenset({("int8", "int16")}),
        output_shape=_shape_same, limits=(SOFTMAX_INPUT_MULTIPLIER,),
    ),
    "ADD": _elementwise(S.ADD_OPTIONS),
    "SUB": _elementwise(S.SUB_OPTIONS),
    "MUL": _elementwise(S.MUL_OPTIONS),
    # RESHAPE's element count is checked by validate.check_reshape (it reads the shape tensor).
    "RESHAPE": OperatorRule(options=S.RESHAPE_OPTIONS, arity=(1, 2), index_input="new shape"),
    "CONCATENATION": OperatorRule(
        options=S.CONCATENATION_OPTIONS, arity=(1, None), data_inputs=None, output_shape=_shape_concat,
    ),
    "PAD": OperatorRule(options=S.PAD_OPTIONS, arity=(2, 2), index_input="paddings"),
    "QUANTIZE": OperatorRule(
        options=S.QUANTIZE_OPTIONS, arity=(1, 1), same_type=False, scales_on=frozenset({"output"}),
        output_shape=_shape_same,
    ),
    # DEQUANTIZE turns per-channel weights into float ones.
    "DEQUANTIZE": OperatorRule(
        options=S.DEQUANTIZE_OPTIONS, arity=(1, 1), per_channel_inputs=frozenset({0}), same_type=False,
        scales_on=frozenset({"data"}), output_shape=_shape_same,
    ),
    "HARD_SWISH": OperatorRule(options=S.HARD_SWISH_OPTIONS, arity=(1, 1), output_shape=_shape_same),
    # SHAPE, STRIDED_SLICE and PACK mostly compute shapes; the aot compiler folds them away.
    "SHAPE": OperatorRule(
        options=S.SHAPE_OPTIONS, arity=(1, 1), per_channel_inputs=None, same_type=False,
        scales_on=frozenset(), output_shape=_shape_of_shape,
    ),
    "STRIDED_SLICE": OperatorRule(options=S.STRIDED_SLICE_OPTIONS, arity=(4, 4), index_input="begin"),
    "PACK": OperatorRule(options=S.PACK_OPTIONS, arity=(1, None), data_inputs=None, output_shape=_shape_pack),
    "MEAN": _reducer(),
    "SUM": _reducer(),
    "REDUCE_PROD": _reducer(),
    "REDUCE_MAX": _reducer(),
    "REDUCE_MIN": _reducer(),
    "REDUCE_ANY": _reducer(),
    "REDUCE_ALL": _reducer(),
    "IF": OperatorRule(
        options=S.IF_OPTIONS, per_channel_inputs=None,
        subgraphs=("then_subgraph_index", "else_subgraph_index"),
    ),
    "WHILE": OperatorRule(
        options=S.WHILE_OPTIONS, per_channel_inputs=None,
        subgraphs=("cond_subgraph_index", "body_subgraph_index"),
    ),
    "CALL_ONCE": OperatorRule(
        options=S.CALL_ONCE_OPTIONS, per_channel_inputs=None, subgraphs=("init_subgraph_index",),
    ),
}


def rule_for(opcode: str) -> OperatorRule | None:
    """The record of a builtin operator ('CONV_2D'), or None for one edgekit has no record of."""
    return OPERATORS.get(opcode)
