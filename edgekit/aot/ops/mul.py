"""MUL, int8 and float32, with broadcasting and fused RELU/RELU6.

A member of the elementwise family (`ElementwiseBinary` in add.py does the
checks and the broadcasting). int8 as TFLM's micro MUL: one multiplier for
s_a * s_b / s_y (QuantizeMultiplier on the float64 product), applied to the
int32 product of the offset inputs.
"""

from __future__ import annotations

from edgekit.aot.ops.add import ElementwiseBinary
from edgekit.aot.ops.base import per_tensor_qparams, register
from edgekit.aot.quant import activation_range_int8, quantize_multiplier


@register
class Mul(ElementwiseBinary):
    opcodes = ("MUL",)
    kernels = ("ek_mul.h",)

    def kernel_name(self, dtype: str) -> str:
        return {"int8": "ek_mul_s8", "float32": "ek_mul_f32"}[dtype]

    def int8_params(self, node, ctx, a, b, y) -> list:
        """TFLM CalculateOpDataMul for int8."""
        a_scale, a_zp = per_tensor_qparams(a)
        b_scale, b_zp = per_tensor_qparams(b)
        y_scale, y_zp = per_tensor_qparams(y)
        multiplier, shift = quantize_multiplier(a_scale * b_scale / y_scale, ctx.single_rounding)
        act_min, act_max = activation_range_int8(
            node.option("fused_activation_function", "NONE"), y_scale, y_zp
        )
        return [-a_zp, -b_zp, y_zp, multiplier, shift, act_min, act_max]
