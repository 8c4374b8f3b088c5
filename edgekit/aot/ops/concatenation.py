"""CONCATENATION along any axis, for int8 and float32 (and other plain types by copy).

TFLM copies blocks (reference_ops::Concatenation) and refuses int8 inputs
whose scale or zero point differ from the output's. Such an input is
requantized here with the arithmetic of TFLM's int8 -> int8 QUANTIZE, which
is what the converter inserts in front of a concatenation otherwise.
"""

from __future__ import annotations

import math

import numpy as np

from edgekit.aot.graph import Node
from edgekit.aot.ops.base import EmitContext, Emitter, call, per_tensor_qparams, register
from edgekit.aot.quant import quantize_multiplier


@register
class Concatenation(Emitter):
    opcodes = ("CONCATENATION",)
    kernels = ("ek_quantize.h", "ek_concat.h")

    def _axis(self, node: Node, ctx: EmitContext) -> int:
        rank = len(ctx.tensor(node.outputs[0]).shape)
        axis = int(node.option("axis", 0))
        return axis + rank if axis < 0 else axis

    def check(self, node: Node, ctx: EmitContext) -> str | None:
        y = ctx.tensor(node.outputs[0])
        inputs = [ctx.tensor(i) for i in node.inputs]
        if node.option("fused_activation_function", "NONE") != "NONE":
            return "fused activation"
        if any(x.dtype != y.dtype for x in inputs):
            return "inputs of different types"
        axis = self._axis(node, ctx)
        if not 0 <= axis < len(y.shape):
            return f"axis {node.option('axis', 0)} of a rank-{len(y.shape)} output"
        for x in inputs:
            if len(x.shape) != len(y.shape) or any(
                x.shape[d] != y.shape[d] for d in range(len(y.shape)) if d != axis
            ):
                return f"input shape {list(x.shape)} does not match output {list(y.shape)}"
        if sum(x.shape[axis] for x in inputs) != y.shape[axis]:
            return "input extents do not add up to the output's"
        if y.dtype == "int8" and any(t.per_channel or not t.quantized for t in (*inputs, y)):
            return "int8 tensors without per-tensor quantization"
        return None

    def emit(self, node: Node, ctx: EmitContext) -> str:
        y = ctx.tensor(node.outputs[0])
        axis = self._axis(node, ctx)
        outer = math.prod(y.shape[:axis])
        inner = math.prod(y.shape[axis + 1 :])
        row = y.shape[axis] * inner
        itemsize = np.dtype(y.dtype).itemsize
        lines, column = [], 0
        for i in node.inputs:
            x = ctx.tensor(i)
            block = x.shape[axis] * inner
            dst = f"{ctx.ptr(y.index)} + {column}"
            if y.dtype == "int8" and self._requantizes(x, y):
                x_scale, x_zp = per_tensor_qparams(x)
                y_scale, y_zp = per_tensor_qparams(y)
                multiplier, shift = quantize_multiplier(x_scale / y_scale, ctx.single_rounding)
                lines.append(call(
                    "ek_concat_requantize_s8", dst, ctx.ptr(i), outer, block, row,
                    x_zp, y_zp, multiplier, shift,
                ))  # fmt: skip
            elif block > 0:
                lines.append(call("ek_concat_copy", dst, ctx.ptr(i), itemsize, outer, block, row))
            column += block
        return "\n".join(lines)

    @staticmethod
    def _requantizes(x, y) -> bool:
        return per_tensor_qparams(x) != per_tensor_qparams(y)
