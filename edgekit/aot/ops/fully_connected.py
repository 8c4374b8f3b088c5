"""FULLY_CONNECTED, int8 (per-tensor or per-channel weights) and float32.

The worked example of the emitter interface (see docs/aot.md): read
attributes, resolve shapes and quantization, emit one kernel call.
"""

from __future__ import annotations

import numpy as np

from edgekit.aot import channel_params
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
    requant_params,
    shift_kind,
    smlad_rows,
)
from edgekit.aot.quant import activation_range_float, activation_range_int8, conv_multipliers


#: EK_FC_LANES_DEPTH of kernels/ek_fully_connected.h: the longest rows the lanes path takes
LANES_DEPTH = 2048
#: EK_FC_Q15_DEPTH of kernels/ek_fc_dsp.h: the longest (padded) rows its Cortex-M DSP path takes
Q15_DEPTH = 1024
#: the fewest multiply-accumulates for which that path pays for its code (about 0.5 KB of flash):
#: KWS's and ResNet-8's classifiers (768 and 640) keep the C loop, AD's layers (1,024 and up) take it
Q15_MIN_MACS = 1024


@register
class FullyConnected(Emitter):
    opcodes = ("FULLY_CONNECTED",)
    kernels = ("ek_mve.h", "ek_fc_dsp.h", "ek_fully_connected.h", "ek_compact.h")

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
        act_min, act_max = activation_range_int8(activation, y_scale, y_zp)
        # one (multiplier, shift) per output: a per-tensor scale repeated
        mults, shifts = conv_multipliers(x_scale, w.scale, y_scale, out_depth, ctx.single_rounding)
        raw_bias = np.asarray(bias.data, dtype=np.int64) if bias is not None else np.zeros(out_depth, np.int64)
        k_pad = dot_length(ctx, accum_depth)
        grouped = _grouped(ctx, out_depth, k_pad)
        if not grouped and channel_params.applies(ctx):
            # `--optimize size`: a 1x1 convolution over `batches` pixels, by ek_compact.h's
            # kernel (the per-tensor requantization repeated for each output)
            params = channel_params.arrays(ctx, y.name, raw_bias, mults, shifts)
            geometry = [1, 1, batches, accum_depth, 1, batches, out_depth, 1, 1, 1, 1, 1, 1, 0, 0]
            return call("ek_conv_compact_s8", ctx.ptr(x.index), ctx.ptr(w.index), *params, ctx.ptr(y.index),
                        f"(int16_t *){ctx.scratch(node)}", *geometry, -x_zp, y_zp, act_min, act_max)  # fmt: skip
        per_channel = w.per_channel
        if not per_channel:
            mults, shifts = mults[:1], shifts[:1]
        weights = np.asarray(w.data, dtype=np.int64)
        acc_bound = accumulator_bound(raw_bias, weights)
        # the DSP path (ek_fc_dsp.h) takes rows in groups of four, zero rows padding the last, and
        # doubles the input where ek_rq wants doubled accumulators; the bias then starts them doubled
        # (not with Helium, whose own grouping ek_mve.h reads)
        doubled = grouped and requant_params(ctx, mults, shifts, y_zp, acc_bound) is not None
        n_rows = -(-out_depth // 4) * 4 if grouped else out_depth
        wsum = np.zeros(n_rows, np.int64)
        wsum[:out_depth] = weights.sum(axis=1)
        # bias + input_offset * sum(w): exact, and it keeps the offset out of the inner loop
        folded = folded_dot_bias(ctx, _padded(raw_bias, n_rows), -x_zp, wsum, y.name, 2 if doubled else 1)
        x_pad = "(int8_t *)0" if k_pad == accum_depth else f"(int8_t *){ctx.scratch(node)}"
        # `speed` stores them as int16 (no unpacking in the loop, twice the flash; AD's 270 KB would
        # double at every mode, so `balanced` keeps int8 here, unlike the conv filters)
        wide = grouped and ctx.optimize == "speed"
        if "mve" in ctx.features:  # grouped by four rows for ek_mve_fc_dot when the C compiler has MVE
            rows = ctx.const_array_layouts(
                "EK_MVE", mve_groups(w.data, k_pad), padded_rows(w.data, k_pad), f"{y.name}_weights"
            )
        elif grouped:
            dsp_rows = wide_row_groups(w.data, k_pad) if wide else row_groups(w.data, k_pad)
            rows = ctx.const_array_layouts("EK_USE_DSP", dsp_rows, padded_rows(w.data, k_pad), f"{y.name}_weights")
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
            ctx.ptr(x.index), f"(const int8_t *){rows}", (2 if wide else 1) if grouped else 0, folded,
            *requant_args(ctx, mults, shifts, y_zp, acc_bound, y.name),
            ctx.ptr(y.index), x_pad, batches, out_depth, accum_depth, k_pad, int(per_channel),
            y_zp, act_min, act_max, shift_kind(shifts),
        )  # fmt: skip

    def scratch_bytes(self, node: Node, ctx: EmitContext) -> int:
        x, w = ctx.tensor(node.inputs[0]), ctx.tensor(node.inputs[1])
        if x.dtype != "int8" or len(w.shape) != 2:
            return 0
        k_pad = dot_length(ctx, w.shape[1])
        if not _grouped(ctx, w.shape[0], k_pad) and channel_params.applies(ctx):
            return 2 * w.shape[1]  # ek_conv_compact_s8's input row as int16
        return k_pad if k_pad != w.shape[1] else 0  # an input row padded to the dot length


def _grouped(ctx: EmitContext, out_depth: int, k_pad: int) -> bool:
    """Whether the DSP path's grouped kernel (ek_fc_dsp.h) takes the layer: rows up to Q15_DEPTH,
    and enough of them to pay for its code (not with Helium, whose own grouping ek_mve.h reads)."""
    return ("dsp" in ctx.features and "mve" not in ctx.features
            and k_pad <= Q15_DEPTH and out_depth * k_pad >= Q15_MIN_MACS)  # fmt: skip


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


def row_groups(rows: np.ndarray, k_pad: int) -> np.ndarray:
    """int8 weights [out][k] as ek_fc4_q15 reads them: [out / 4][k_pad / 4][4 rows][4 taps].

    Rows are zero-padded to k_pad taps and to whole groups of four (zero
    weights add nothing), so one LDM loads the same 4 taps of four rows.
    """
    padded = padded_rows(rows, k_pad)
    groups = -(-padded.shape[0] // 4)
    whole = np.zeros((groups * 4, k_pad), dtype=np.int8)
    whole[: padded.shape[0]] = padded
    return whole.reshape(groups, 4, k_pad // 4, 4).transpose(0, 2, 1, 3).copy()


def wide_row_groups(rows: np.ndarray, k_pad: int) -> np.ndarray:
    """row_groups as int16 in SMLAD order, as ek_fc4_q15w reads them: [out / 4][k_pad / 4][4 rows][4]
    with each row's 4 taps as (w0, w2, w1, w3), the halfword pairs of the widened input's words."""
    wide = smlad_rows(row_groups(rows, k_pad).transpose(0, 2, 1, 3).reshape(-1, k_pad), k_pad)
    groups = wide.shape[0] // 4
    return wide.reshape(groups, 4, k_pad // 4, 4).transpose(0, 2, 1, 3).copy()


def _padded(values: np.ndarray, length: int) -> np.ndarray:
    out = np.zeros(length, dtype=np.int64)
    out[: len(values)] = values
    return out


def _float(value: float) -> str:
    from edgekit.aot.codegen import float_literal

    return float_literal(value)
