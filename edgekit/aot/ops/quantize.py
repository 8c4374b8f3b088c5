"""QUANTIZE (float32 -> int8; int8 -> int8; uint8 <-> int8) and DEQUANTIZE (int8 -> float32).

As TFLM's micro kernels: AffineQuantize for float input, Requantize with
QuantizeMultiplier(s_in / s_out) for integer input, Dequantize for float output.
"""

from __future__ import annotations

import numpy as np

from edgekit.aot.graph import Node
from edgekit.aot.inplace import elementwise_lag
from edgekit.aot.ops.base import EmitContext, Emitter, c_literal, call, per_tensor_qparams, register
from edgekit.aot.quant import quantize_multiplier


#: integer -> integer QUANTIZE kernels (TFLM's Requantize), by (input, output) dtype
_REQUANTIZE = {
    ("int8", "int8"): "ek_quantize_s8_s8",
    ("uint8", "int8"): "ek_quantize_u8_s8",
    ("int8", "uint8"): "ek_quantize_s8_u8",
}


def _per_tensor(t) -> bool:
    return t.quantized and not t.per_channel


@register
class Quantize(Emitter):
    opcodes = ("QUANTIZE",)
    kernels = ("ek_quantize.h",)

    def check(self, node: Node, ctx: EmitContext) -> str | None:
        x, y = ctx.tensor(node.inputs[0]), ctx.tensor(node.outputs[0])
        if (x.dtype, y.dtype) != ("float32", "int8") and (x.dtype, y.dtype) not in _REQUANTIZE:
            return f"{x.dtype} -> {y.dtype}"
        if not _per_tensor(y) or (x.dtype != "float32" and not _per_tensor(x)):
            return "per-channel or missing quantization"
        return None

    def overwrites(self, node: Node, ctx: EmitContext) -> dict[int, int]:
        """Element by element; the output's elements are never wider than the input's."""
        x, y = ctx.tensor(node.inputs[0]), ctx.tensor(node.outputs[0])
        return {0: elementwise_lag(x.size, np.dtype(x.dtype).itemsize, np.dtype(y.dtype).itemsize)}

    def emit(self, node: Node, ctx: EmitContext) -> str:
        x, y = ctx.tensor(node.inputs[0]), ctx.tensor(node.outputs[0])
        y_scale, y_zp = per_tensor_qparams(y)
        if x.dtype == "float32":
            return call(
                "ek_quantize_f32_s8", ctx.ptr(x.index), ctx.ptr(y.index), x.size,
                c_literal(y_scale, "float"), y_zp,
            )  # fmt: skip
        x_scale, x_zp = per_tensor_qparams(x)
        multiplier, shift = quantize_multiplier(x_scale / y_scale, ctx.single_rounding)
        return call(
            _REQUANTIZE[(x.dtype, y.dtype)], ctx.ptr(x.index), ctx.ptr(y.index), x.size,
            x_zp, y_zp, multiplier, shift,
        )  # fmt: skip


@register
class Dequantize(Emitter):
    opcodes = ("DEQUANTIZE",)
    kernels = ("ek_quantize.h",)

    def check(self, node: Node, ctx: EmitContext) -> str | None:
        x, y = ctx.tensor(node.inputs[0]), ctx.tensor(node.outputs[0])
        if (x.dtype, y.dtype) != ("int8", "float32"):
            return f"{x.dtype} -> {y.dtype}"
        if not _per_tensor(x):
            return "per-channel or missing quantization"
        return None

    def emit(self, node: Node, ctx: EmitContext) -> str:
        x, y = ctx.tensor(node.inputs[0]), ctx.tensor(node.outputs[0])
        x_scale, x_zp = per_tensor_qparams(x)
        return call(
            "ek_dequantize_s8_f32", ctx.ptr(x.index), ctx.ptr(y.index), x.size,
            c_literal(x_scale, "float"), x_zp,
        )  # fmt: skip
