"""SOFTMAX over the last axis, int8 (TFLM's fixed-point algorithm, exp tabulated) and float32."""

from __future__ import annotations

import math

import numpy as np

from edgekit.aot.codegen import float_literal
from edgekit.aot.fixedpoint import exp_on_negative_values, srdhm, wrap32
from edgekit.aot.graph import Node
from edgekit.aot.ops.base import EmitContext, Emitter, call, per_tensor_qparams, register
from edgekit.aot.quant import quantize_multiplier

SCALED_DIFF_INTEGER_BITS = 5
ACCUMULATION_INTEGER_BITS = 12


def softmax_scaling(beta: float, input_scale: float, single_rounding: bool) -> tuple[int, int, int]:
    """TFLM PreprocessSoftmaxScaling + CalculateInputRadius: (multiplier, left_shift, diff_min)."""
    max_real = float((1 << 30) - 1) if single_rounding else float((1 << 31) - 1)
    real = min(float(beta) * float(input_scale) * (1 << (31 - SCALED_DIFF_INTEGER_BITS)), max_real)
    multiplier, left_shift = quantize_multiplier(real, single_rounding)
    radius = (
        1.0
        * ((1 << SCALED_DIFF_INTEGER_BITS) - 1)
        * (1 << (31 - SCALED_DIFF_INTEGER_BITS))
        / (1 << left_shift)
    )
    diff_min = int(-1.0 * math.floor(radius))
    return multiplier, left_shift, diff_min


def softmax_exp_table(beta: float, input_scale: float, single_rounding: bool) -> np.ndarray:
    """exp of the int8 differences (x - max) that have one, as gemmlowp FixedPoint<0>: entry i is
    exp(i - (len - 1)), for differences from max(diff_min, -255) to 0. TFLM counts a difference
    below diff_min as exp 0, so those need no entry; the kernel rescales each value to the
    sum's 12 integer bits itself (one rounding shift), where a second table would cost 1 KiB."""
    multiplier, left_shift, diff_min = softmax_scaling(beta, input_scale, single_rounding)
    lowest = max(diff_min, -255)
    table = np.zeros(1 - lowest, dtype=np.int64)
    for diff in range(lowest, 1):
        if single_rounding:
            total_shift = 31 - left_shift
            rescaled = wrap32((diff * multiplier + (1 << (total_shift - 1))) >> total_shift)
        else:  # MultiplyByQuantizedMultiplierGreaterThanOne, double rounding
            rescaled = srdhm(wrap32(diff * (1 << left_shift)), multiplier)
        table[diff - lowest] = exp_on_negative_values(rescaled, SCALED_DIFF_INTEGER_BITS)
    return table.astype(np.int32)


@register
class Softmax(Emitter):
    opcodes = ("SOFTMAX",)
    kernels = ("ek_softmax.h",)

    def check(self, node: Node, ctx: EmitContext) -> str | None:
        x, y = ctx.tensor(node.inputs[0]), ctx.tensor(node.outputs[0])
        if x.dtype == "float32" and y.dtype == "float32":
            return None
        if x.dtype == "int8" and y.dtype == "int8":
            if not (x.quantized and y.quantized):
                return "int8 tensors without quantization"
            if per_tensor_qparams(y) != (1.0 / 256, -128):
                return "int8 output not scaled 1/256 with zero point -128"
            return None
        return f"{x.dtype} input with {y.dtype} output"

    def emit(self, node: Node, ctx: EmitContext) -> str:
        x, y = ctx.tensor(node.inputs[0]), ctx.tensor(node.outputs[0])
        depth = x.shape[-1] if x.shape else 1
        rows = x.size // max(depth, 1)
        beta = float(np.float32(node.option("beta", 1.0)))
        if x.dtype == "float32":
            return call("ek_softmax_f32", ctx.ptr(x.index), ctx.ptr(y.index), rows, depth,
                        float_literal(beta))  # fmt: skip
        x_scale, _ = per_tensor_qparams(x)
        multiplier, left_shift, diff_min = softmax_scaling(beta, x_scale, ctx.single_rounding)
        span = -max(diff_min, -255)
        # `--optimize size` computes exp where it is used: the code is smaller than the table
        table = (
            "(const int32_t *)0"
            if ctx.optimize == "size"
            else ctx.const_array(softmax_exp_table(beta, x_scale, ctx.single_rounding), f"{y.name}_exp")
        )
        return call("ek_softmax_s8", ctx.ptr(x.index), ctx.ptr(y.index), table, span, multiplier, left_shift,
                    rows, depth)  # fmt: skip
