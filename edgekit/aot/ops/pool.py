"""AVERAGE_POOL_2D and MAX_POOL_2D, int8 and float32, NHWC."""

from __future__ import annotations

from edgekit.aot.codegen import float_literal
from edgekit.aot.graph import Node
from edgekit.aot.ops.base import EmitContext, Emitter, call, per_tensor_qparams, register
from edgekit.aot.ops.conv import resolve_window, window_check
from edgekit.aot.quant import activation_range_float, activation_range_int8


class _Pool(Emitter):
    kernels = ("ek_pool.h",)
    kind = ""

    def check(self, node: Node, ctx: EmitContext) -> str | None:
        x, y = ctx.tensor(node.inputs[0]), ctx.tensor(node.outputs[0])
        if x.dtype != y.dtype or x.dtype not in ("int8", "float32"):
            return f"{x.dtype} input with {y.dtype} output"
        if x.dtype == "int8":
            # like TFLM, pooling works on the raw int8 values: the converter gives the
            # output the input's quantization, and nothing is requantized
            if not (x.quantized and y.quantized):
                return "int8 tensors without quantization"
        problem = window_check(node, x, y, node.option("filter_height", 1), node.option("filter_width", 1))
        if problem:
            return problem
        if x.shape[3] != y.shape[3]:
            return "channel count changes"
        return None

    def scratch_bytes(self, node: Node, ctx: EmitContext) -> int:
        y = ctx.tensor(node.outputs[0])
        return 4 * y.shape[3] if self.kind == "average" and y.dtype == "int8" else 0

    def emit(self, node: Node, ctx: EmitContext) -> str:
        x, y = ctx.tensor(node.inputs[0]), ctx.tensor(node.outputs[0])
        k_h, k_w = node.option("filter_height", 1), node.option("filter_width", 1)
        win = resolve_window(node, x, y, k_h, k_w)
        activation = node.option("fused_activation_function", "NONE")
        shape = [win.batches, win.in_h, win.in_w, win.in_c, win.out_h, win.out_w,
                 k_h, k_w, win.stride_h, win.stride_w, win.pad_h, win.pad_w]  # fmt: skip
        if x.dtype == "float32":
            lo, hi = activation_range_float(activation)
            return call(f"ek_{self.kind}_pool_f32", ctx.ptr(x.index), ctx.ptr(y.index), *shape,
                        float_literal(lo), float_literal(hi))  # fmt: skip
        y_scale, y_zp = per_tensor_qparams(y)
        act_min, act_max = activation_range_int8(activation, y_scale, y_zp)
        pointers = [ctx.ptr(x.index), ctx.ptr(y.index)]
        if self.kind == "average":
            pointers.append(f"(int32_t *){ctx.scratch(node)}")
        return call(f"ek_{self.kind}_pool_s8", *pointers, *shape, act_min, act_max)


@register
class AveragePool2D(_Pool):
    opcodes = ("AVERAGE_POOL_2D",)
    kind = "average"


@register
class MaxPool2D(_Pool):
    opcodes = ("MAX_POOL_2D",)
    kind = "max"
