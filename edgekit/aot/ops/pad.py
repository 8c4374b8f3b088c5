"""PAD and PADV2 with constant paddings, any element type (int8 and float32 tested).

The pad value is what TFLM's micro PAD uses: for PAD, the output zero point
of an int8 tensor and 0 otherwise; for PADV2, the constant third input (for
int8 its raw value, which TFLM requires to share the output's quantization).
"""

from __future__ import annotations

import numpy as np

from edgekit.aot.graph import Node
from edgekit.aot.ops.base import EmitContext, Emitter, c_literal, c_type, call, register

#: loops of the pad kernel
PAD_DIMS = 4


def fold_padding(
    in_shape: tuple[int, ...], paddings: np.ndarray
) -> tuple[list[int], list[int], list[int]] | None:
    """(input extents, left pads, output extents) in PAD_DIMS dimensions, or None.

    Unpadded extent-1 dimensions are dropped, and an unpadded dimension is
    merged into its outer neighbour (whose rows it fills completely).
    """
    dims = [
        [int(n), int(lo), int(hi)]
        for n, (lo, hi) in zip(in_shape, paddings.tolist())
        if not (n == 1 and lo == 0 and hi == 0)
    ]
    d = len(dims) - 1
    while d > 0:
        n, lo, hi = dims[d]
        if lo == 0 and hi == 0:
            dims[d - 1] = [dims[d - 1][0] * n, dims[d - 1][1] * n, dims[d - 1][2] * n]
            del dims[d]
        d -= 1
    if len(dims) > PAD_DIMS:
        return None
    dims = [[1, 0, 0]] * (PAD_DIMS - len(dims)) + dims
    return [n for n, _, _ in dims], [lo for _, lo, _ in dims], [n + lo + hi for n, lo, hi in dims]


@register
class Pad(Emitter):
    opcodes = ("PAD", "PADV2")
    kernels = ("ek_pad.h",)

    def _paddings(self, node: Node, ctx: EmitContext) -> np.ndarray:
        return np.asarray(ctx.tensor(node.inputs[1]).data, dtype=np.int64).reshape(-1, 2)

    def check(self, node: Node, ctx: EmitContext) -> str | None:
        x, y = ctx.tensor(node.inputs[0]), ctx.tensor(node.outputs[0])
        if x.dtype != y.dtype:
            return f"{x.dtype} input, {y.dtype} output"
        if not ctx.tensor(node.inputs[1]).is_const:
            return "paddings computed at run time"
        paddings = self._paddings(node, ctx)
        if paddings.shape[0] != len(x.shape) or np.any(paddings < 0):
            return f"paddings {paddings.tolist()} for a rank-{len(x.shape)} input"
        if tuple(int(n + lo + hi) for n, (lo, hi) in zip(x.shape, paddings)) != tuple(y.shape):
            return "output shape does not match the paddings"
        if node.opcode == "PADV2" and len(node.inputs) > 2 and node.inputs[2] >= 0:
            value = ctx.tensor(node.inputs[2])
            if not value.is_const or value.size != 1 or value.dtype != x.dtype:
                return "pad value that is not a constant scalar of the input's type"
        if fold_padding(x.shape, paddings) is None:
            return f"padding in more than {PAD_DIMS} dimensions"
        return None

    def _pad_value(self, node: Node, ctx: EmitContext):
        x, y = ctx.tensor(node.inputs[0]), ctx.tensor(node.outputs[0])
        if node.opcode == "PADV2" and len(node.inputs) > 2 and node.inputs[2] >= 0:
            return np.asarray(ctx.tensor(node.inputs[2]).data).reshape(-1)[0]
        if x.dtype == "int8" and y.quantized:
            return int(y.zero_point[0])
        return 0

    def emit(self, node: Node, ctx: EmitContext) -> str:
        x, y = ctx.tensor(node.inputs[0]), ctx.tensor(node.outputs[0])
        in_dims, left, out_dims = fold_padding(x.shape, self._paddings(node, ctx))
        ctype = c_type(x.dtype)
        value = c_literal(self._pad_value(node, ctx), ctype)
        kernel = call(
            "ek_pad", ctx.ptr(x.index), ctx.ptr(y.index), "&pad_value", f"sizeof({ctype})",
            *in_dims, *left, *out_dims,
        )  # fmt: skip
        return f"{{\n  const {ctype} pad_value = {value};\n  {kernel}\n}}"
