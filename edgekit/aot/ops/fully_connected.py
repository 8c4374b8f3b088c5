"""FULLY_CONNECTED, int8 (per-tensor or per-channel weights) and float32.

The worked example of the emitter interface (see docs/aot.md): read
attributes, resolve shapes and quantization, emit one kernel call.
"""

from __future__ import annotations

import numpy as np

from edgekit.aot.graph import Node
from edgekit.aot.ops.base import (
    EmitContext,
    Emitter,
    call,
    per_tensor_qparams,
    register,
    weighted_types_problem,
)
from edgekit.aot.ops.conv import (
    accumulator_bound,
    dot_length,
    folded_dot_bias,
    mve_groups,
    padded_rows,
    requant_args,
    shift_kind,
)
from edgekit.aot.quant import activation_range_float, activation_range_int8, conv_multipliers


#: EK_FC_LANES_DEPTH of kernels/ek_fully_connected.h: the longest rows the lanes path takes
LANES_DEPTH = 2048


@register
class FullyConnected(Emitter):
    opcodes = ("FULLY_CONNECTED",)
    kernels = ("ek_mve.h", "ek_fully_connected.h")

    # -- 1. attributes --------------------------------------------------------------------
    def _tensors(self, node: Node, ctx: EmitContext):
        x = ctx.tensor(node.inputs[0])
        w = ctx.tensor(node.inputs[1])
        bias = ctx.tensor(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] >= 0 else None
        y = ctx.tensor(node.outputs[0])
        return x, w, bias, y

    def check(self, node: Node, ctx: EmitContext) -> str | None:
        x, w, bias, y = self._tensors(node, ctx)
        if not w.is_const or (bias is not None and not bias.is_const):
            return "weights computed at run time"
        if len(w.shape) != 2:
            return f"weights of rank {len(w.shape)}"
        if node.option("weights_format", "DEFAULT") != "DEFAULT":
            return "shuffled weights"
        problem = weighted_types_problem(x, w, bias, y, "weights")
        if problem:
            return problem
        if x.dtype == "int8" and np.any(w.zero_point != 0):
            return "weights with a nonzero zero point"
        if x.size % w.shape[1]:
            return "input size not a multiple of the weights' depth"
        return None

    # -- 2 + 3. resolve and emit -----------------------------------------------------------
    def emit(self, node: Node, ctx: EmitContext) -> str:
        x, w, bias, y = self._tensors(node, ctx)
        out_depth, accum_depth = w.shape
        batches = x.size // accum_depth
        activation = node.option("fused_activation_function", "NONE")
        if x.dtype == "float32":
            lo, hi = activation_range_float(activation)
            return call(
                "ek_fully_connected_f32",
                ctx.ptr(x.index), ctx.ptr(w.index),
                ctx.ptr(bias.index) if bias is not None else "(const float *)0",
                ctx.ptr(y.index), batches, out_depth, accum_depth,
                _float(lo), _float(hi),
            )  # fmt: skip

        x_scale, x_zp = per_tensor_qparams(x)
        y_scale, y_zp = per_tensor_qparams(y)
        mults, shifts = conv_multipliers(x_scale, w.scale, y_scale, out_depth, ctx.single_rounding)
        per_channel = w.per_channel
        if not per_channel:
            mults, shifts = mults[:1], shifts[:1]
        weights = np.asarray(w.data, dtype=np.int64)
        raw_bias = np.asarray(bias.data, dtype=np.int64) if bias is not None else np.zeros(out_depth, np.int64)
        # bias + input_offset * sum(w): exact, and it keeps the offset out of the inner loop
        folded = folded_dot_bias(ctx, raw_bias, -x_zp, weights.sum(axis=1), y.name)
        act_min, act_max = activation_range_int8(activation, y_scale, y_zp)
        k_pad = dot_length(ctx, accum_depth)
        x_pad = "(int8_t *)0" if k_pad == accum_depth else f"(int8_t *){ctx.scratch(node)}"
        if "mve" in ctx.features:  # grouped by four rows for ek_mve_fc_dot when the C compiler has MVE
            rows = ctx.const_array_layouts(
                "EK_MVE", mve_groups(w.data, k_pad), padded_rows(w.data, k_pad), f"{y.name}_weights"
            )
        elif "dsp" not in ctx.features and accum_depth <= LANES_DEPTH:
            # hosts: packed for the lanes when the C compiler takes that path (EK_FC_LANES)
            rows = ctx.const_array_layouts(
                "EK_FC_LANES", pair_packed(w.data), padded_rows(w.data, k_pad), f"{y.name}_weights"
            )
        elif k_pad == accum_depth:
            rows = ctx.ptr(w.index)
        else:
            rows = ctx.const_array(padded_rows(w.data, k_pad), f"{y.name}_weights")
        return call(
            "ek_fully_connected_s8",
            ctx.ptr(x.index), rows, folded,
            *requant_args(ctx, mults, shifts, y_zp, accumulator_bound(raw_bias, weights), y.name),
            ctx.ptr(y.index), x_pad, batches, out_depth, accum_depth, k_pad, int(per_channel),
            y_zp, act_min, act_max, shift_kind(shifts),
        )  # fmt: skip

    def scratch_bytes(self, node: Node, ctx: EmitContext) -> int:
        x, w = ctx.tensor(node.inputs[0]), ctx.tensor(node.inputs[1])
        if x.dtype != "int8" or len(w.shape) != 2:
            return 0
        k_pad = dot_length(ctx, w.shape[1])
        return k_pad if k_pad != w.shape[1] else 0  # an input row padded to the dot length


def pair_packed(rows: np.ndarray, lanes: int = 8) -> np.ndarray:
    """int8 weights [out][k] as ek_fc_lanes_s8 reads them: [out / lanes][k / 2][lanes][2].

    Outputs are zero-padded to whole blocks and k to whole pairs (zero
    weights add nothing), so one 16-byte load holds a pair of taps for eight
    outputs.
    """
    rows = np.asarray(rows, dtype=np.int8).reshape(rows.shape[0], -1)
    out_n, k = rows.shape
    blocks, pairs = -(-out_n // lanes), -(-k // 2)
    padded = np.zeros((blocks * lanes, pairs * 2), dtype=np.int8)
    padded[:out_n, :k] = rows
    return padded.reshape(blocks, lanes, pairs, 2).transpose(0, 2, 1, 3).copy()


def _float(value: float) -> str:
    from edgekit.aot.codegen import float_literal

    return float_literal(value)
