"""HARD_SWISH, int8 (by a 256-entry table) and float32: x * relu6(x + 3) / 6.

An int8 input takes only 256 values, so TFLM's int8 HardSwish
(reference_ops::HardSwish on int16 fixed point, with the parameters its
HardSwishPrepare computes) runs here, at compile time, once per value, in
Python integers with every int16 wrap and saturation of the C++ made
explicit; the kernel looks the results up (`ek_lut_s8`, shared with
LOGISTIC). The float32 kernel is TFLM's formula in its order of operations.
"""

from __future__ import annotations

import numpy as np

from edgekit.aot.graph import Node
from edgekit.aot.ops.base import EmitContext, Emitter, call, per_tensor_qparams, register
from edgekit.aot.ops.logistic import check_table_activation
from edgekit.aot.quant import quantize_multiplier

INT16_MIN, INT16_MAX = -(2**15), 2**15 - 1


def wrap16(x: int) -> int:
    """What storing an int into an int16_t leaves (gcc and clang wrap modulo 2^16)."""
    return (x + 2**15) % 2**16 - 2**15


def _c_div(a: int, b: int) -> int:
    """C integer division: truncates toward zero."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def srdhm16(a: int, b: int) -> int:
    """gemmlowp SaturatingRoundingDoublingHighMul on int16 (round half away from zero)."""
    if a == b == INT16_MIN:
        return INT16_MAX
    ab = a * b
    nudge = (1 << 14) if ab >= 0 else 1 - (1 << 14)
    return wrap16(_c_div(ab + nudge, 1 << 15))


def sdhm16(a: int, b: int) -> int:
    """TFLite SaturatingDoublingHighMul on int16: the same product, truncated toward zero."""
    if a == b == INT16_MIN:
        return INT16_MAX
    return wrap16(_c_div(a * b, 1 << 15))


def rdbpot16(x: int, exponent: int) -> int:
    """gemmlowp RoundingDivideByPOT instantiated for int16 (its mask is an int16 too)."""
    mask = wrap16((1 << exponent) - 1)
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return wrap16((x >> exponent) + (1 if remainder > threshold else 0))


def saturating_left_shift16(value: int, amount: int) -> int:
    return min(max(value * (1 << amount), INT16_MIN), INT16_MAX)


def downscale_multiplier16(multiplier: int) -> int:
    """TFLite DownScaleInt32ToInt16Multiplier: the Q0.31 multiplier rounded to Q0.15."""
    if multiplier >= 2**31 - 1 - (1 << 15):
        return INT16_MAX
    return (multiplier + (1 << 15)) >> 16


def hard_swish_params(input_scale: float, output_scale: float, single_rounding: bool):
    """(output multiplier, output exponent, reluish multiplier, reluish exponent) as HardSwishPrepare:
    float32 scale arithmetic, QuantizeMultiplier, then int16 multipliers."""
    f32 = np.float32
    hires_input_scale = f32(1.0 / 128.0) * f32(input_scale)
    reluish_scale = f32(3.0) / f32(32768.0)
    out_m, out_e = quantize_multiplier(float(hires_input_scale / f32(output_scale)), single_rounding)
    relu_m, relu_e = quantize_multiplier(float(hires_input_scale / reluish_scale), single_rounding)
    return downscale_multiplier16(out_m), out_e, downscale_multiplier16(relu_m), relu_e


def hard_swish_value(q: int, input_zp: int, output_zp: int, params) -> int:
    """TFLM's int8 HardSwish of one input value `q`."""
    out_m, out_e, relu_m, relu_e = params
    input_value = wrap16(q - input_zp)
    hires = wrap16(input_value * (1 << 7))
    preshift_output = srdhm16(hires, out_m)
    reluish = hires
    if relu_e > 0:
        reluish = saturating_left_shift16(reluish, relu_e - 1)
    reluish = srdhm16(reluish, relu_m)
    if relu_e > 0:
        reluish = saturating_left_shift16(reluish, 1)
    if relu_e < 0:
        reluish = rdbpot16(reluish, -relu_e)
    reluish = wrap16((reluish + (1 << 15)) >> 1)
    output = rdbpot16(sdhm16(reluish, preshift_output), -out_e)
    output = wrap16(output + output_zp)
    return min(max(output, -128), 127)


def hard_swish_table(input_scale: float, input_zp: int, output_scale: float, output_zp: int,
                     single_rounding: bool) -> list[int]:
    """TFLM's int8 HARD_SWISH output for every input value -128..127."""
    params = hard_swish_params(input_scale, output_scale, single_rounding)
    return [hard_swish_value(q, input_zp, output_zp, params) for q in range(-128, 128)]


@register
class HardSwish(Emitter):
    opcodes = ("HARD_SWISH",)
    kernels = ("ek_logistic.h", "ek_hard_swish.h")

    def check(self, node: Node, ctx: EmitContext) -> str | None:
        problem = check_table_activation(node, ctx)
        if problem:
            return problem
        x, y = ctx.tensor(node.inputs[0]), ctx.tensor(node.outputs[0])
        if x.dtype == "int8":
            params = hard_swish_params(per_tensor_qparams(x)[0], per_tensor_qparams(y)[0], ctx.single_rounding)
            if params[1] > 0:  # TFLM's (and LiteRT's) Prepare refuses it too
                return "output scale below input scale / 128"
        return None

    def emit(self, node: Node, ctx: EmitContext) -> str:
        x, y = ctx.tensor(node.inputs[0]), ctx.tensor(node.outputs[0])
        if x.dtype == "float32":
            return call("ek_hard_swish_f32", ctx.ptr(x.index), ctx.ptr(y.index), x.size)
        (x_scale, x_zp), (y_scale, y_zp) = per_tensor_qparams(x), per_tensor_qparams(y)
        table = hard_swish_table(x_scale, x_zp, y_scale, y_zp, ctx.single_rounding)
        name = ctx.const_array(np.asarray(table, dtype=np.int8), f"{y.name}_hard_swish", "int8_t")
        return call("ek_lut_s8", ctx.ptr(x.index), ctx.ptr(y.index), x.size, name)
