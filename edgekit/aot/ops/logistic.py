"""LOGISTIC, int8 (by a 256-entry table) and float32.

An int8 input takes only 256 values, so TFLM's integer logistic
(reference_integer_ops::Logistic with gemmlowp's fixed-point `logistic` on a
Q4.27 input) is run here, at compile time, for each of them, in exact Python
integer arithmetic; the kernel looks the results up. The parameters are the
ones TFLM's micro LOGISTIC Prepare computes: a multiplier from frexp (not
QuantizeMultiplier) of s_in * 2^27 and an input radius beyond which the
output saturates.
"""

from __future__ import annotations

import math

import numpy as np

from edgekit.aot.fixedpoint import INT32_MAX, exp_on_negative_values, rdbpot, sat_mul_pot, srdhm, wrap32
from edgekit.aot.graph import Node
from edgekit.aot.ops.base import EmitContext, Emitter, call, per_tensor_qparams, register
from edgekit.aot.quant import tflite_round

INPUT_INTEGER_BITS = 4  # the Q4.27 input format of TFLM's int8 logistic


def multiply_by_quantized_multiplier(x: int, multiplier: int, shift: int, single_rounding: bool) -> int:
    """TFLM MultiplyByQuantizedMultiplier(int32), in the rounding of the matched build."""
    if single_rounding:
        total = 31 - shift
        return (x * multiplier + (1 << (total - 1))) >> total
    left, right = max(shift, 0), max(-shift, 0)
    return rdbpot(srdhm(wrap32(x * (1 << left)), multiplier), right)


def _one_over_one_plus_x_for_x_in_0_1(a: int) -> int:
    """gemmlowp one_over_one_plus_x_for_x_in_0_1: Q0.31 -> Q0.31, by Newton-Raphson in Q2.29."""
    total = a + INT32_MAX
    # RoundingHalfSum: (a + b + sign) / 2 in C integer division (toward zero)
    half_denominator = (abs(total) + 1) // 2 * (1 if total >= 0 else -1)
    x = wrap32(1515870810 + srdhm(half_denominator, -1010580540))  # 48/17 - 32/17 * d
    for _ in range(3):
        one_minus = wrap32((1 << 29) - srdhm(half_denominator, x))
        x = wrap32(x + sat_mul_pot(srdhm(x, one_minus), 2))
    return sat_mul_pot(x, 1)


def fixed_point_logistic(a: int) -> int:
    """gemmlowp::logistic of a Q4.27 raw value, as a Q0.31 raw value."""
    if a == 0:
        return 1 << 30
    positive = a > 0
    magnitude = a if positive else wrap32(-a)
    result = _one_over_one_plus_x_for_x_in_0_1(
        exp_on_negative_values(wrap32(-magnitude), INPUT_INTEGER_BITS)
    )
    return result if positive else wrap32(INT32_MAX - result)


# ---- TFLM's int8 LOGISTIC --------------------------------------------------------------


def logistic_params(input_scale: float) -> tuple[int, int, int]:
    """(multiplier, left shift, input radius) as TFLM's CalculateArithmeticOpDataLogistic."""
    real = float(input_scale) * float(1 << (31 - INPUT_INTEGER_BITS))
    q, left_shift = math.frexp(real)
    multiplier = int(tflite_round(q * (1 << 31)))
    radius = math.floor(
        1.0 * ((1 << INPUT_INTEGER_BITS) - 1) * (1 << (31 - INPUT_INTEGER_BITS)) / 2.0**left_shift
    )
    return multiplier, left_shift, radius


def logistic_table(input_scale: float, input_zero_point: int, single_rounding: bool) -> list[int]:
    """TFLM's int8 logistic output for every input value -128..127 (output zero point -128)."""
    multiplier, left_shift, radius = logistic_params(input_scale)
    table = []
    for q in range(-128, 128):
        x = q - input_zero_point
        if x <= -radius:
            table.append(-128)
        elif x >= radius:
            table.append(127)
        else:
            q4 = multiply_by_quantized_multiplier(x, multiplier, left_shift, single_rounding)
            q0 = fixed_point_logistic(q4)
            table.append(min(max(rdbpot(q0, 31 - 8) - 128, -128), 127))
    return table


def check_table_activation(node: Node, ctx: EmitContext) -> str | None:
    """What every activation computed through a 256-entry int8 table (or in float) needs."""
    x, y = ctx.tensor(node.inputs[0]), ctx.tensor(node.outputs[0])
    if x.dtype != y.dtype or x.dtype not in ("int8", "float32"):
        return f"{x.dtype} input, {y.dtype} output"
    if x.dtype == "int8" and any(t.per_channel or not t.quantized for t in (x, y)):
        return "int8 tensors without per-tensor quantization"
    return None


@register
class Logistic(Emitter):
    opcodes = ("LOGISTIC",)
    kernels = ("ek_logistic.h",)

    def check(self, node: Node, ctx: EmitContext) -> str | None:
        problem = check_table_activation(node, ctx)
        if problem:
            return problem
        x, y = ctx.tensor(node.inputs[0]), ctx.tensor(node.outputs[0])
        if x.dtype == "int8":
            if int(y.zero_point[0]) != -128:
                return "int8 output zero point other than -128"
            if logistic_params(per_tensor_qparams(x)[0])[1] < 0:
                return "input scale below 2^-28"
        return None

    def overwrites(self, node: Node, ctx: EmitContext) -> dict[int, int]:
        """Element by element, output and input of one type."""
        return {0: 0}

    def emit(self, node: Node, ctx: EmitContext) -> str:
        x, y = ctx.tensor(node.inputs[0]), ctx.tensor(node.outputs[0])
        if x.dtype == "float32":
            return call("ek_logistic_f32", ctx.ptr(x.index), ctx.ptr(y.index), x.size)
        scale, zero_point = per_tensor_qparams(x)
        table = np.asarray(logistic_table(scale, zero_point, ctx.single_rounding), dtype=np.int8)
        name = ctx.const_array(table, f"{y.name}_logistic", "int8_t")
        return call("ek_lut_s8", ctx.ptr(x.index), ctx.ptr(y.index), x.size, name)
