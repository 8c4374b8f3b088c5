"""The binary elementwise family (ADD here; MUL plugs in as a subclass in mul.py).

`ElementwiseBinary` does what every member shares: dtype checks, NumPy-style
broadcasting resolved at compile time into constant loops, and one kernel
call per contiguous run. A member names its kernel and its int8 parameters.

Kernel signature every member implements (one per dtype):

    void <kernel>(const T *a, int a_stride, const T *b, int b_stride, T *y, int n, <params>)

computing y[i] = f(a[i * a_stride], b[i * b_stride]) for i < n, where the
strides are 1 or 0 (an input broadcast along the run); `<params>` are
whatever `int8_params` / `float_params` return.
"""

from __future__ import annotations

import numpy as np

from edgekit.aot.graph import Node, TensorInfo
from edgekit.aot.ops.base import EmitContext, Emitter, c_args, per_tensor_qparams, register
from edgekit.aot.ops.conv import requant_params
from edgekit.aot.quant import (
    multiply_by_quantized_multiplier_smaller_than_one,
    activation_range_float,
    activation_range_int8,
    quantize_multiplier_smaller_than_one,
)

MAX_RANK = 6


def broadcast_plan(a: tuple, b: tuple, y: tuple) -> tuple[list[int], list[int], list[int]]:
    """Output dims and element strides of a and b (0 where broadcast), merged where possible.

    Adjacent dimensions are merged when neither input changes its broadcast
    pattern between them, so a same-shape op is one run of y.size elements.
    """
    rank = max(len(a), len(b), len(y), 1)
    a = (1,) * (rank - len(a)) + tuple(a)
    b = (1,) * (rank - len(b)) + tuple(b)
    y = (1,) * (rank - len(y)) + tuple(y)

    def strides(shape):
        out, step = [0] * rank, 1
        for i in reversed(range(rank)):
            out[i] = step if shape[i] != 1 else 0
            step *= shape[i]
        return out

    sa, sb = strides(a), strides(b)
    dims, da, db = [], [], []
    for i in range(rank):
        if y[i] == 1:
            continue
        if dims and (da[-1] == 0) == (sa[i] == 0) and (db[-1] == 0) == (sb[i] == 0):
            # merge into the previous (outer) dim: the inner stride and combined size
            dims[-1] *= y[i]
            da[-1], db[-1] = sa[i], sb[i]
        else:
            dims.append(y[i])
            da.append(sa[i])
            db.append(sb[i])
    if not dims:
        return [1], [0], [0]
    return dims, da, db


class ElementwiseBinary(Emitter):
    """Shared base of ADD/SUB/MUL-like ops: y = f(a, b) with broadcasting."""

    kernels: tuple[str, ...] = ()

    def kernel_name(self, dtype: str) -> str:
        raise NotImplementedError

    def int8_params(self, node: Node, ctx: EmitContext, a: TensorInfo, b: TensorInfo, y: TensorInfo) -> list:
        raise NotImplementedError

    def float_params(self, node: Node, ctx: EmitContext) -> list:
        lo, hi = activation_range_float(node.option("fused_activation_function", "NONE"))
        from edgekit.aot.codegen import float_literal

        return [float_literal(lo), float_literal(hi)]

    def check(self, node: Node, ctx: EmitContext) -> str | None:
        a, b, y = (ctx.tensor(node.inputs[0]), ctx.tensor(node.inputs[1]), ctx.tensor(node.outputs[0]))
        if not (a.dtype == b.dtype == y.dtype):
            return f"mixed types {a.dtype}, {b.dtype} -> {y.dtype}"
        if y.dtype not in ("int8", "float32"):
            return f"{y.dtype} tensors"
        if y.dtype == "int8" and not (a.quantized and b.quantized and y.quantized):
            return "int8 tensors without quantization"
        if max(len(a.shape), len(b.shape), len(y.shape)) > MAX_RANK:
            return f"rank above {MAX_RANK}"
        try:
            expected = np.broadcast_shapes(a.shape, b.shape)
        except ValueError:
            return "shapes that do not broadcast"
        if tuple(expected) != tuple(y.shape):
            return "output shape differs from the broadcast shape"
        return None

    def overwrites(self, node: Node, ctx: EmitContext) -> dict[int, int]:
        """An input of the output's shape and type is read element by element in the output's order."""
        y = ctx.tensor(node.outputs[0])
        return {
            k: 0
            for k, t in enumerate(node.inputs[:2])
            if t >= 0 and ctx.tensor(t).shape == y.shape and ctx.tensor(t).dtype == y.dtype
        }

    def emit(self, node: Node, ctx: EmitContext) -> str:
        a, b, y = (ctx.tensor(node.inputs[0]), ctx.tensor(node.inputs[1]), ctx.tensor(node.outputs[0]))
        if y.dtype == "int8":
            params = self.int8_params(node, ctx, a, b, y)
        else:
            params = self.float_params(node, ctx)
        fn = self.kernel_name(y.dtype)
        dims, sa, sb = broadcast_plan(a.shape, b.shape, y.shape)
        pa, pb, py = ctx.ptr(a.index), ctx.ptr(b.index), ctx.ptr(y.index)
        n, inner_a, inner_b = dims[-1], int(sa[-1] != 0), int(sb[-1] != 0)
        if len(dims) == 1:
            return f"{fn}({c_args(pa, inner_a, pb, inner_b, py, n, *params)});"
        # outer dims become constant loops; offsets are linear in the loop counters
        outer = dims[:-1]
        loops, off_a, off_b, off_y = [], [], [], []
        y_stride = n
        y_strides = []
        for d in reversed(outer):
            y_strides.append(y_stride)
            y_stride *= d
        y_strides.reverse()
        for k, d in enumerate(outer):
            loops.append(f"for (i{k} = 0; i{k} < {d}; ++i{k})")
            if sa[k]:
                off_a.append(f"i{k} * {sa[k]}")
            if sb[k]:
                off_b.append(f"i{k} * {sb[k]}")
            off_y.append(f"i{k} * {y_strides[k]}")
        counters = ", ".join(f"i{k}" for k in range(len(outer)))
        expr_a = f"{pa} + {' + '.join(off_a)}" if off_a else pa
        expr_b = f"{pb} + {' + '.join(off_b)}" if off_b else pb
        expr_y = f"{py} + {' + '.join(off_y)}"
        body = f"{fn}({c_args(expr_a, inner_a, expr_b, inner_b, expr_y, n, *params)});"
        lines = ["{", f"  int {counters};"]
        for depth, loop in enumerate(loops):
            lines.append("  " * (depth + 1) + loop)
        lines.append("  " * (len(loops) + 1) + body)
        lines.append("}")
        return "\n".join(lines)


@register
class Add(ElementwiseBinary):
    opcodes = ("ADD",)
    kernels = ("ek_mve.h", "ek_add.h")

    def kernel_name(self, dtype: str) -> str:
        return {"int8": "ek_add_s8", "float32": "ek_add_f32"}[dtype]

    def check(self, node: Node, ctx: EmitContext) -> str | None:
        if node.option("pot_scale_int16", False) and ctx.tensor(node.outputs[0]).dtype == "int16":
            return "int16 power-of-two scales"
        return super().check(node, ctx)

    def int8_params(self, node, ctx, a, b, y) -> list:
        """TFLM CalculateOpDataAdd for int8: left shift 20, inputs rescaled to twice the max scale."""
        a_scale, a_zp = per_tensor_qparams(a)
        b_scale, b_zp = per_tensor_qparams(b)
        y_scale, y_zp = per_tensor_qparams(y)
        left_shift = 20
        twice_max = 2 * float(max(np.float32(a_scale), np.float32(b_scale)))
        sr = ctx.single_rounding
        a_mult, a_shift = quantize_multiplier_smaller_than_one(a_scale / twice_max, sr)
        b_mult, b_shift = quantize_multiplier_smaller_than_one(b_scale / twice_max, sr)
        y_mult, y_shift = quantize_multiplier_smaller_than_one(
            twice_max / ((1 << left_shift) * y_scale), sr
        )
        act_min, act_max = activation_range_int8(
            node.option("fused_activation_function", "NONE"), y_scale, y_zp
        )
        # each input's rescaled term depends only on its int8 value: 256-entry tables in
        # flash (1 KiB each) replace two of the three multiplications per element
        def terms(zp: int, mult: int, shift: int) -> np.ndarray:
            return np.asarray([
                multiply_by_quantized_multiplier_smaller_than_one((v - zp) << left_shift, mult, shift, sr)
                for v in range(-128, 128)
            ], dtype=np.int64)  # fmt: skip

        shifts = 2 if y_shift <= -1 else 1
        # (DSP targets only: vectorized arithmetic beat table lookups on x86; and not at
        # `--optimize size`, where 2 KiB per ADD was 8% of ResNet-8's weights, except with
        # Helium, whose kernels are the same in every mode and gather from the tables)
        compact = ctx.optimize == "size" and "mve" not in ctx.features
        if "dsp" not in ctx.features or compact:
            tables = ["(const int32_t *)0"] * 2
        else:
            a_terms, b_terms = terms(a_zp, a_mult, a_shift), terms(b_zp, b_mult, b_shift)
            bound = int(np.abs(a_terms).max() + np.abs(b_terms).max())
            if requant_params(ctx, [y_mult], [y_shift], y_zp, bound) is not None:
                # ek_rq takes the doubled sum: the tables hold doubled terms
                a_terms, b_terms, shifts = 2 * a_terms, 2 * b_terms, 3
            tables = [ctx.const_array(t.astype(np.int32), f"{y.name}_{hint}_terms")
                      for t, hint in ((a_terms, "a"), (b_terms, "b"))]  # fmt: skip
        return [
            *tables, -a_zp, a_mult, a_shift, -b_zp, b_mult, b_shift, left_shift,
            y_mult, y_shift, y_zp, act_min, act_max, shifts,
        ]  # fmt: skip
