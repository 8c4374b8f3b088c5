"""MEAN over constant axes, int8 and float32, keep_dims either way.

int8 follows TFLM's micro MEAN (reference_ops::QuantizedMeanOrSum): the
multiplier of s_in / s_out is computed with QuantizeMultiplier, then 1/count
is folded into it the way TFLM does at run time (shift by floor(log2(count)),
integer division by count), so the kernel requantizes each sum once.
"""

from __future__ import annotations

import math

import numpy as np

from edgekit.aot.graph import Node
from edgekit.aot.ops.base import EmitContext, Emitter, call, per_tensor_qparams, register
from edgekit.aot.quant import quantize_multiplier

#: kept and reduced loops of the mean kernels
MEAN_LOOPS = 3


def mean_multiplier(multiplier: int, shift: int, count: int) -> tuple[int, int]:
    """TFLM's fold of 1/count into (multiplier, shift), from QuantizedMeanOrSum."""
    extra = min(count.bit_length() - 1, 32, 31 + shift)
    return (multiplier << extra) // count, shift - extra


def resolve_axes(axes: np.ndarray, rank: int) -> list[int] | None:
    """Axes made non-negative and deduplicated, in first-seen order (TFLM ResolveAxis)."""
    resolved = []
    for a in np.asarray(axes).reshape(-1).tolist():
        a = int(a) + rank if int(a) < 0 else int(a)
        if not 0 <= a < rank:
            return None
        if a not in resolved:
            resolved.append(a)
    return resolved


def split_reduction(
    shape: tuple[int, ...], axes: list[int]
) -> tuple[list[int], list[int], list[int], list[int]] | None:
    """(kept extents, kept strides, reduced extents, reduced strides), MEAN_LOOPS each, or None.

    Extent-1 dimensions are dropped and neighbours of the same kind merged;
    strides are in input elements, outermost first.
    """
    strides, step = [0] * len(shape), 1
    for d in range(len(shape) - 1, -1, -1):
        strides[d] = step
        step *= shape[d]
    groups: list[list] = []  # [reduced?, extent, stride]
    for d, n in enumerate(shape):
        if n == 1:
            continue
        reduced = d in axes
        if groups and groups[-1][0] == reduced:
            groups[-1][1] *= n
            groups[-1][2] = strides[d]
        else:
            groups.append([reduced, n, strides[d]])
    kept = [(n, s) for r, n, s in groups if not r]
    red = [(n, s) for r, n, s in groups if r]
    if len(kept) > MEAN_LOOPS or len(red) > MEAN_LOOPS:
        return None
    kept = [(1, 0)] * (MEAN_LOOPS - len(kept)) + kept
    red = [(1, 0)] * (MEAN_LOOPS - len(red)) + red
    return [n for n, _ in kept], [s for _, s in kept], [n for n, _ in red], [s for _, s in red]


@register
class Mean(Emitter):
    opcodes = ("MEAN",)
    kernels = ("ek_mean.h",)

    def _axes(self, node: Node, ctx: EmitContext) -> list[int] | None:
        return resolve_axes(ctx.tensor(node.inputs[1]).data, len(ctx.tensor(node.inputs[0]).shape))

    def check(self, node: Node, ctx: EmitContext) -> str | None:
        x, y = ctx.tensor(node.inputs[0]), ctx.tensor(node.outputs[0])
        if x.dtype != y.dtype or x.dtype not in ("int8", "float32"):
            return f"{x.dtype} input, {y.dtype} output"
        if not ctx.tensor(node.inputs[1]).is_const:
            return "axes computed at run time"
        axes = self._axes(node, ctx)
        if axes is None:
            return "axis out of range"
        if x.size == 0:
            return "empty input"
        if x.dtype == "int8" and any(t.per_channel or not t.quantized for t in (x, y)):
            return "int8 tensors without per-tensor quantization"
        kept = math.prod(n for d, n in enumerate(x.shape) if d not in axes)
        if kept != y.size:
            return "output size does not match the reduction"
        if split_reduction(x.shape, axes) is None:
            return f"reduction over axes {axes} of shape {list(x.shape)} too fragmented"
        return None

    def emit(self, node: Node, ctx: EmitContext) -> str:
        x, y = ctx.tensor(node.inputs[0]), ctx.tensor(node.outputs[0])
        axes = self._axes(node, ctx)
        kept, kept_strides, red, red_strides = split_reduction(x.shape, axes)
        count = math.prod(x.shape[a] for a in axes)
        loops = [*kept, *kept_strides, *red, *red_strides]
        if x.dtype == "float32":
            return call("ek_mean_f32", ctx.ptr(x.index), ctx.ptr(y.index), *loops, count)
        x_scale, x_zp = per_tensor_qparams(x)
        y_scale, y_zp = per_tensor_qparams(y)
        multiplier, shift = quantize_multiplier(x_scale / y_scale, ctx.single_rounding)
        multiplier, shift = mean_multiplier(multiplier, shift, count)
        return call(
            "ek_mean_s8", ctx.ptr(x.index), ctx.ptr(y.index), *loops,
            x_zp, count, y_zp, multiplier, shift,
        )  # fmt: skip
