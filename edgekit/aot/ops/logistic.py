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

from edgekit.aot.graph import Node
from edgekit.aot.ops.base import EmitContext, Emitter, call, per_tensor_qparams, register
from edgekit.aot.quant import tflite_round

INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1
INPUT_INTEGER_BITS = 4  # the Q4.27 input format of TFLM's int8 logistic


# ---- gemmlowp fixed-point arithmetic on int32 raw values (fixedpoint.h) -----------------


def _wrap(x: int) -> int:
    """int32 two's-complement wrap-around, as the C++ additions behave."""
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def _div_trunc(a: int, b: int) -> int:
    """C integer division (truncates toward zero)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def srdhm(a: int, b: int) -> int:
    """SaturatingRoundingDoublingHighMul."""
    if a == b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    return _div_trunc(ab + nudge, 1 << 31)


def rounding_divide_by_pot(x: int, exponent: int) -> int:
    mask = (1 << exponent) - 1
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if (x & mask) > threshold else 0)


def saturating_rounding_multiply_by_pot(x: int, exponent: int) -> int:
    if exponent < 0:
        return rounding_divide_by_pot(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    if x > threshold:
        return INT32_MAX
    if x < -threshold:
        return INT32_MIN
    return x << exponent


def multiply_by_quantized_multiplier(x: int, multiplier: int, shift: int, single_rounding: bool) -> int:
    """TFLM MultiplyByQuantizedMultiplier(int32), in the rounding of the matched build."""
    if single_rounding:
        total = 31 - shift
        return (x * multiplier + (1 << (total - 1))) >> total
    left, right = max(shift, 0), max(-shift, 0)
    return rounding_divide_by_pot(srdhm(_wrap(x * (1 << left)), multiplier), right)


def _exp_on_interval_between_negative_one_quarter_and_0_excl(a: int) -> int:
    constant_term = 1895147668  # exp(-1/8) in Q0.31
    constant_1_over_3 = 715827883
    x = _wrap(a + (1 << 28))
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = saturating_rounding_multiply_by_pot(x4, -2)
    poly = saturating_rounding_multiply_by_pot(
        _wrap(srdhm(_wrap(x4_over_4 + x3), constant_1_over_3) + x2), -1
    )
    return _wrap(constant_term + srdhm(constant_term, _wrap(x + poly)))


# exp(-2^k) in Q0.31, for the barrel shifter of exp_on_negative_values
_EXP_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
               (2, 39332535), (3, 720401), (4, 242))  # fmt: skip


def _exp_on_negative_values(a: int, integer_bits: int = INPUT_INTEGER_BITS) -> int:
    fractional_bits = 31 - integer_bits
    one_quarter = 1 << (fractional_bits - 2)
    a_mod_quarter_minus_one_quarter = _wrap((a & (one_quarter - 1)) - one_quarter)
    result = _exp_on_interval_between_negative_one_quarter_and_0_excl(
        saturating_rounding_multiply_by_pot(a_mod_quarter_minus_one_quarter, integer_bits)
    )
    remainder = _wrap(a_mod_quarter_minus_one_quarter - a)
    for exponent, multiplier in _EXP_BARREL:
        if integer_bits > exponent and remainder & (1 << (fractional_bits + exponent)):
            result = srdhm(result, multiplier)
    # integer_bits <= 5: gemmlowp's clamp below -32 does not apply
    return INT32_MAX if a == 0 else result


def _one_over_one_plus_x_for_x_in_0_1(a: int) -> int:
    total = a + INT32_MAX
    half_denominator = _div_trunc(total + (1 if total >= 0 else -1), 2)  # RoundingHalfSum
    x = _wrap(1515870810 + srdhm(half_denominator, -1010580540))  # 48/17 - 32/17 * d, Q2.29
    for _ in range(3):  # Newton-Raphson
        one_minus = _wrap((1 << 29) - srdhm(half_denominator, x))
        x = _wrap(x + saturating_rounding_multiply_by_pot(srdhm(x, one_minus), 2))
    return saturating_rounding_multiply_by_pot(x, 1)


def fixed_point_logistic(a: int) -> int:
    """gemmlowp::logistic of a Q4.27 raw value, as a Q0.31 raw value."""
    if a == 0:
        return 1 << 30
    positive = a > 0
    magnitude = a if positive else _wrap(-a)
    result = _one_over_one_plus_x_for_x_in_0_1(_exp_on_negative_values(_wrap(-magnitude)))
    return result if positive else _wrap(INT32_MAX - result)


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
            table.append(min(max(rounding_divide_by_pot(q0, 31 - 8) - 128, -128), 127))
    return table


@register
class Logistic(Emitter):
    opcodes = ("LOGISTIC",)
    kernels = ("ek_logistic.h",)

    def check(self, node: Node, ctx: EmitContext) -> str | None:
        x, y = ctx.tensor(node.inputs[0]), ctx.tensor(node.outputs[0])
        if x.dtype != y.dtype or x.dtype not in ("int8", "float32"):
            return f"{x.dtype} input, {y.dtype} output"
        if x.dtype == "int8":
            if any(t.per_channel or not t.quantized for t in (x, y)):
                return "int8 tensors without per-tensor quantization"
            if int(y.zero_point[0]) != -128:
                return "int8 output zero point other than -128"
            if logistic_params(per_tensor_qparams(x)[0])[1] < 0:
                return "input scale below 2^-28"
        return None

    def emit(self, node: Node, ctx: EmitContext) -> str:
        x, y = ctx.tensor(node.inputs[0]), ctx.tensor(node.outputs[0])
        if x.dtype == "float32":
            return call("ek_logistic_f32", ctx.ptr(x.index), ctx.ptr(y.index), x.size)
        scale, zero_point = per_tensor_qparams(x)
        table = np.asarray(logistic_table(scale, zero_point, ctx.single_rounding), dtype=np.int8)
        name = ctx.const_array(table, f"{y.name}_logistic", "int8_t")
        return call("ek_lut_s8", ctx.ptr(x.index), ctx.ptr(y.index), x.size, name)
