"""CONV_2D and DEPTHWISE_CONV_2D, int8 (per-channel) and float32, NHWC."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgekit.aot import channel_params
from edgekit.aot.codegen import float_literal
from edgekit.aot.graph import Node, TensorInfo
from edgekit.aot.inplace import lag, window_lag
from edgekit.aot.ops.base import (
    EmitContext,
    Emitter,
    call,
    emitter_for,
    per_tensor_qparams,
    register,
    weighted_types_problem,
)
from edgekit.aot.quant import activation_range_float, activation_range_int8, conv_multipliers


def compute_padding(stride: int, dilation: int, in_size: int, k: int, out_size: int) -> int:
    """TFLM ComputePadding: the leading pad of a SAME window (0 for VALID shapes)."""
    effective = (k - 1) * dilation + 1
    pad = ((out_size - 1) * stride + effective - in_size) // 2
    return max(pad, 0)


def compute_out_size(padding: str, in_size: int, k: int, stride: int, dilation: int) -> int:
    """TFLM ComputeOutSize."""
    effective = (k - 1) * dilation + 1
    if padding == "SAME":
        return (in_size + stride - 1) // stride
    return (in_size + stride - effective) // stride


@dataclass
class Window:
    """The spatial geometry of a 2-D window op, resolved from options and shapes."""

    batches: int
    in_h: int
    in_w: int
    in_c: int
    out_h: int
    out_w: int
    out_c: int
    k_h: int
    k_w: int
    stride_h: int
    stride_w: int
    dil_h: int
    dil_w: int
    pad_h: int
    pad_w: int

    def args(self) -> list[int]:
        return [
            self.batches, self.in_h, self.in_w, self.in_c, self.out_h, self.out_w, self.out_c,
        ]  # fmt: skip

    def kernel_args(self) -> list[int]:
        return [
            self.k_h, self.k_w, self.stride_h, self.stride_w, self.dil_h, self.dil_w,
            self.pad_h, self.pad_w,
        ]  # fmt: skip


def resolve_window(node: Node, x: TensorInfo, y: TensorInfo, k_h: int, k_w: int) -> Window:
    stride_h, stride_w = node.option("stride_h", 1), node.option("stride_w", 1)
    dil_h = node.option("dilation_h_factor", 1)
    dil_w = node.option("dilation_w_factor", 1)
    n, in_h, in_w, in_c = x.shape
    _, out_h, out_w, out_c = y.shape
    return Window(
        batches=n, in_h=in_h, in_w=in_w, in_c=in_c, out_h=out_h, out_w=out_w, out_c=out_c,
        k_h=k_h, k_w=k_w, stride_h=stride_h, stride_w=stride_w, dil_h=dil_h, dil_w=dil_w,
        pad_h=compute_padding(stride_h, dil_h, in_h, k_h, out_h),
        pad_w=compute_padding(stride_w, dil_w, in_w, k_w, out_w),
    )  # fmt: skip


def window_check(node: Node, x: TensorInfo, y: TensorInfo, k_h: int, k_w: int) -> str | None:
    """Shape consistency both conv and pool emitters need."""
    if len(x.shape) != 4 or len(y.shape) != 4:
        return "input or output not 4-D"
    padding = node.option("padding", "SAME")
    if padding not in ("SAME", "VALID"):
        return f"padding {padding}"
    w = resolve_window(node, x, y, k_h, k_w)
    expect = (
        compute_out_size(padding, w.in_h, k_h, w.stride_h, w.dil_h),
        compute_out_size(padding, w.in_w, k_w, w.stride_w, w.dil_w),
    )
    if expect != (w.out_h, w.out_w) or x.shape[0] != y.shape[0]:
        return "output shape inconsistent with the window"
    return None


def int32_wrap(values: np.ndarray) -> np.ndarray:
    return ((np.asarray(values, dtype=np.int64) + 2**31) % 2**32 - 2**31).astype(np.int32)


DW_MAX_TAPS = 64  # EK_DW_MAX_TAPS (kernels/ek_conv.h)
TAPS_MAX = 32  # EK_TAPS_MAX (kernels/ek_conv_taps.h)
DOT_BIAS = 128  # EK_DOT_BIAS of the portable ek_dot (kernels/ek_common.h); 0 on the DSP path


def dot_length(ctx: EmitContext, k: int) -> int:
    """The padded length of ek_dot rows: whole SIMD words, so the dot has no scalar tail.

    32 bytes on hosts (compilers vectorize a multiple of 32 fully; 144 runs
    five times slower than 160 on AVX-512), 8 on Cortex-M's DSP path, where
    flash is dear: SMLAD takes 4 bytes at a time, and the assembly loop of
    ek_dot2x4_q15 four widened words.
    """
    if "mve" in ctx.features:
        granule = 16  # one Helium vector of bytes per VMLADAVA (kernels/ek_mve.h)
    else:
        granule = 8 if "dsp" in ctx.features else 32
    return -(-k // granule) * granule


def padded_rows(rows: np.ndarray, length: int) -> np.ndarray:
    """int8 rows zero-padded on the right to `length` (zero weights add nothing)."""
    rows = np.asarray(rows, dtype=np.int8).reshape(rows.shape[0], -1)
    out = np.zeros((rows.shape[0], length), dtype=np.int8)
    out[:, : rows.shape[1]] = rows
    return out


#: EK_X86_CONV_DEPTH (kernels/ek_x86.h): the longest window, in taps rounded up to 4, of the AVX2 path
X86_CONV_DEPTH = 4608
LANES = 16  # EK_LANES of the x86 VNNI path (kernels/ek_common.h): output channels per vector


def lane_packed(rows: np.ndarray, lanes: int = LANES) -> np.ndarray:
    """int8 rows [out][k] packed for ek_lanes_dot: [out / lanes][k / 4][lanes][4].

    Outputs are zero-padded to whole blocks and k to whole 4-byte words (zero
    weights add nothing), so one 64-byte load holds four taps of 16 channels.
    """
    rows = np.asarray(rows, dtype=np.int8).reshape(rows.shape[0], -1)
    out_n, k = rows.shape
    blocks, words = -(-out_n // lanes), -(-k // 4)
    padded = np.zeros((blocks * lanes, words * 4), dtype=np.int8)
    padded[:out_n, :k] = rows
    return padded.reshape(blocks, lanes, words, 4).transpose(0, 2, 1, 3).copy()


def smlad_rows(rows: np.ndarray, length: int, scale: int = 1) -> np.ndarray:
    """int8 rows times `scale` (1 or 2) as int16, zero-padded to `length` (a multiple of 4),
    each group of four taps in SMLAD order (0, 2, 1, 3): the order ek_widen_q15_pair gives
    the input."""
    padded = padded_rows(rows, length).astype(np.int16) * np.int16(scale)
    return padded.reshape(padded.shape[0], -1, 4)[:, :, [0, 2, 1, 3]].reshape(padded.shape[0], -1).copy()


def smlad_groups(rows: np.ndarray, length: int, scale: int = 1) -> np.ndarray:
    """smlad_rows with every whole group of four rows interleaved by 32-bit word
    ([group][word][4 rows][2 halfwords]), the rows past the last group as they are:
    one LDRD of ek_dot2x4_q15 then loads the same word of two rows."""
    r = smlad_rows(rows, length, scale)
    n, words = r.shape[0], length // 2
    whole = n // 4 * 4
    groups = r[:whole].reshape(n // 4, 4, words, 2).transpose(0, 2, 1, 3).reshape(-1)
    return np.concatenate([groups, r[whole:].reshape(-1)])


MVE_ROWS = 4  # EK_MVE_ROWS (kernels/ek_mve.h): filter rows sharing each window load


def mve_groups(rows: np.ndarray, length: int) -> np.ndarray:
    """int8 rows zero-padded to `length` (a multiple of 16) for ek_mve_conv_dot2: every whole
    group of four rows interleaved by 16-byte chunk ([group][chunk][4 rows][16]), so one
    pointer walks the four; the rows past the last group as they are."""
    r = padded_rows(rows, length)
    n, chunks = r.shape[0], length // 16
    whole = n // MVE_ROWS * MVE_ROWS
    groups = r[:whole].reshape(n // MVE_ROWS, MVE_ROWS, chunks, 16).transpose(0, 2, 1, 3).reshape(-1)
    return np.concatenate([groups, r[whole:].reshape(-1)])


MVE_LANE_CHANNELS = (0, 2, 1, 3)  # ek_mve_depthwise_block: accumulator q's first channel


def mve_lane_order(values: np.ndarray, channels: int) -> np.ndarray:
    """Per-channel int32 values in the lane order of ek_mve_depthwise_block: blocks of 16
    channels, entry 4q + j of a block being channel 4j + (0, 2, 1, 3)[q] (the order VMULLB/VMULLT
    and VMOVLB/VMOVLT leave the products in), zero past the last channel."""
    blocks = -(-channels // 16)
    padded = np.zeros(blocks * 16, dtype=np.int32)
    padded[:channels] = np.asarray(values, dtype=np.int32).reshape(-1)
    b, q, j = np.meshgrid(np.arange(blocks), np.arange(4), np.arange(4), indexing="ij")
    return padded[b * 16 + 4 * j + np.asarray(MVE_LANE_CHANNELS)[q]].reshape(-1)


def depthwise_dsp_filter(filt: np.ndarray, scale: int = 1) -> np.ndarray:
    """A depthwise filter [1][k_h][k_w][c] (c % 4 == 0) times `scale` as int16, each tap's
    channels in groups of four ordered (0, 2, 1, 3): the halfwords SXTB16 makes of an input word."""
    f = np.asarray(filt, dtype=np.int16).reshape(-1, filt.shape[-1]) * np.int16(scale)
    return f.reshape(f.shape[0], -1, 4)[:, :, [0, 2, 1, 3]].reshape(f.shape[0], -1).copy()


def uses_taps(ctx: EmitContext, in_c: int, out_c: int, k_h: int, k_w: int) -> bool:
    """ek_conv_taps_s8 (kernels/ek_conv_taps.h) for an int8 CONV_2D: on the DSP path with
    int16 filters, for windows of up to TAPS_MAX taps, in_c % 8 == 0 and out_c % 4 == 0.

    It copies no window, so its scratch is the accumulators of a pixel pair and one widened
    tap (192 B for ResNet-8's 16-channel 3x3 convs against ek_conv_s8's 992 B), and it is the
    kernel a convolution fused with its ADD runs.
    """
    return wide_filters(ctx) and k_h * k_w <= TAPS_MAX and in_c % 8 == 0 and out_c % 4 == 0


def taps_dsp_filter(filt: np.ndarray, scale: int = 1) -> np.ndarray:
    """A conv filter [out_c][k_h][k_w][in_c] for ek_conv_taps_s8's DSP path: tap by tap, that
    tap's in_c columns of every row as smlad_groups lays them out (times `scale`)."""
    filt = np.asarray(filt)
    taps = filt.reshape(filt.shape[0], -1, filt.shape[3])
    return np.concatenate([smlad_groups(taps[:, t, :], filt.shape[3], scale) for t in range(taps.shape[1])])


def x86_depthwise_filter(filt: np.ndarray) -> np.ndarray:
    """A depthwise filter [1][k_h][k_w][c] (c % 16 == 0) as ek_x86_depthwise_s8 reads it: int8
    [tap pair][c / 16][2][2][4][2], an odd last tap paired with zeros. Per pair and 16 channels,
    32 bytes in the order vpunpcklwd then vpunpckhwd interleave two taps' channels
    (ch = 16 * block + 8 * lane + 4 * half + j, as (half, lane, j, tap))."""
    f = np.asarray(filt, dtype=np.int8).reshape(-1, filt.shape[-1])
    taps, c = f.shape
    if taps % 2:
        f = np.concatenate([f, np.zeros((1, c), np.int8)])
    f = f.reshape(-1, 2, c // 16, 2, 2, 4)  # [pair][tap][block][lane][half][j]
    return f.transpose(0, 2, 4, 3, 5, 1).copy()


#: ring slots ek_depthwise_dsp_s8 takes at most (EK_DWR_MAX_SPAN, kernels/ek_depthwise_dsp.h)
RING_MAX_SPAN = 16


@dataclass
class Ring:
    """The row ring of ek_depthwise_dsp_s8: `span` slots of `width` pixels of `channels` (a multiple
    of 4) int16."""

    span: int
    width: int
    channels: int

    @property
    def nbytes(self) -> int:
        return 2 * self.span * self.width * self.channels


def depthwise_ring(ctx: EmitContext, win: Window, rq: np.ndarray | None) -> Ring | None:
    """The ring of the DSP path's depthwise kernel (kernels/ek_depthwise_dsp.h), or None where it
    does not apply: int16 filters (not `--optimize size`), ek_rq's requantization, a window of at
    most RING_MAX_SPAN rows with dilation."""
    span = (win.k_h - 1) * win.dil_h + 1
    if not wide_filters(ctx) or rq is None or span > RING_MAX_SPAN:
        return None
    needed = (win.out_w - 1) * win.stride_w + (win.k_w - 1) * win.dil_w + 1
    return Ring(span=span, width=max(win.pad_w + win.in_w, needed), channels=-(-win.out_c // 4) * 4)


def ring_lag(win: Window, span: int) -> int:
    """The in-place lag of ek_depthwise_dsp_s8: an output row is written once every input row its
    windows read is in the ring; the rows are copied in the kernel's order (slot y mod span)."""
    row_in, row_out = win.in_w * win.in_c, win.out_w * win.out_c
    zero, stale = -1, -2
    slots = [zero] * span
    written, read = [], []
    for b in range(win.batches):
        if b:
            slots = [zero if s == zero else stale for s in slots]
        for oy in range(win.out_h):
            first = float("inf")
            for ky in range(win.k_h):
                y = oy * win.stride_h - win.pad_h + ky * win.dil_h
                want = y if 0 <= y < win.in_h else zero
                if slots[y % span] != want:
                    if want != zero:
                        first = min(first, (b * win.in_h + y) * row_in)
                    slots[y % span] = want
            read.append(first)
            written.append((b * win.out_h + oy + 1) * row_out)
    return lag(np.array(written), np.array(read))


def depthwise_ring_params(filt: np.ndarray, folded_bias: np.ndarray, rq: np.ndarray, channels: int) -> np.ndarray:
    """ek_depthwise_dsp_s8's run of flash per group of four channels: the doubled folded biases,
    then per tap two words of the doubled filter as int16 pairs, (c0, c2) and (c1, c3) (the
    halfwords SXTB16 makes of an input word), then per channel ek_rq's multiplier m and rounding
    term 2^(e-1) + offset * 2^e (the first two columns of `rq`, [channel][stride]) and one word of
    the four right shifts e, a byte each. Channels past the model's are zero-padded to `channels`
    (a multiple of 4)."""
    f = np.asarray(filt, dtype=np.int16).reshape(-1, filt.shape[-1]) * np.int16(2)
    taps, out_c = f.shape
    groups = channels // 4
    padded = np.zeros((taps, channels), dtype=np.int16)
    padded[:, :out_c] = f
    words = padded.reshape(taps, groups, 4)[:, :, [0, 2, 1, 3]].transpose(1, 0, 2)
    words = np.ascontiguousarray(words).reshape(-1).view("<i4").astype(np.int32).reshape(groups, 2 * taps)
    bias = np.zeros(channels, dtype=np.int32)
    bias[:out_c] = int32_wrap(np.asarray(folded_bias, dtype=np.int64) * 2)
    rq = np.asarray(rq, dtype=np.int64).reshape(out_c, -1)[:, :2]
    params = np.zeros((channels, 2), dtype=np.int64)
    params[:out_c] = rq
    params[out_c:] = rq[-1]  # never stored; valid parameters all the same
    # the rounding term is 2^(e-1) times an odd number: its lowest set bit gives e
    e = np.log2(params[:, 1] & -params[:, 1]).astype(np.int64) + 1
    packed = (e.reshape(groups, 4) << np.array([0, 8, 16, 24])).sum(axis=1)
    return np.concatenate([bias.reshape(groups, 4), words, int32_wrap(params).reshape(groups, 8),
                           int32_wrap(packed).reshape(groups, 1)], axis=1).reshape(-1)  # fmt: skip


def dot_rows(ctx: EmitContext, rows: np.ndarray, k_pad: int, hint: str, scale: int = 1) -> str:
    """The weight rows of a conv layer in flash, laid out for the C path.

    DSP targets: smlad_groups (times `scale`, 2 when the requantization takes
    doubled accumulators) when the C compiler has the DSP instructions, else
    rows padded to k_pad; hosts: lane_packed when the C compiler takes the
    EK_LANES path or the AVX2 one (EK_X86_CONV, windows up to X86_CONV_DEPTH
    taps), else rows padded to k_pad. (int16 copies for the AVX2 path ran 7%
    faster but would double the weights a DSP-less Cortex-M bundle's
    WEIGHTS_SIZE, and so its fit report, counts.)
    """
    if "mve" in ctx.features:
        return ctx.const_array_layouts("EK_MVE", mve_groups(rows, k_pad), padded_rows(rows, k_pad), hint)
    if wide_filters(ctx):
        return ctx.const_array_layouts(
            "EK_USE_DSP", smlad_groups(rows, k_pad, scale), padded_rows(rows, k_pad), hint
        )
    if "dsp" in ctx.features:
        return ctx.const_array(padded_rows(rows, k_pad), hint)
    packed = f"EK_LANES == {LANES}"
    if -(-np.asarray(rows).reshape(rows.shape[0], -1).shape[1] // 4) * 4 <= X86_CONV_DEPTH:
        packed += " || EK_X86_CONV"  # the AVX2 path (kernels/ek_x86.h) reads the same packing
    return ctx.const_array_layouts(packed, lane_packed(rows), padded_rows(rows, k_pad), hint)


def acc_row(ctx: EmitContext, out_c: int) -> int:
    """int32 accumulators one output pixel needs: whole lane blocks on hosts."""
    return out_c if "dsp" in ctx.features else -(-out_c // LANES) * LANES


def shift_kind(shifts: np.ndarray) -> int:
    """ek_requantize_s8's `right_shifts_only`: 2 if every shift is <= -1, 1 if <= 0, else 0."""
    shifts = np.asarray(shifts)
    return 2 if np.all(shifts <= -1) else int(np.all(shifts <= 0))


#: |accumulator| below which 2 * acc fits in int32 (ek_rq takes the doubled accumulator)
RQ_ACC_LIMIT = 2**30


def accumulator_bound(bias: np.ndarray, rows: np.ndarray) -> int:
    """The largest |bias + sum w * (x + input_offset)| any input can give: |x + offset| <= 255."""
    rows = np.abs(np.asarray(rows, dtype=np.int64).reshape(len(np.asarray(bias).reshape(-1)), -1))
    return int(np.max(np.abs(np.asarray(bias, dtype=np.int64).reshape(-1)) + 255 * rows.sum(axis=1)))


def wide_filters(ctx: EmitContext) -> bool:
    """Conv and depthwise filters stored as int16 for the DSP path (all but `--optimize size`).

    Not on Helium targets: their kernels (kernels/ek_mve.h) take int8 weights.
    """
    return "dsp" in ctx.features and "mve" not in ctx.features and ctx.optimize != "size"


def requant_stride(ctx: EmitContext) -> int:
    """Parameters per channel of ek_rq: 3 with e stored (`speed`), else 2 (e from the rounding term)."""
    return 3 if ctx.optimize == "speed" else 2


def requant_params(ctx: EmitContext, mults, shifts, output_offset: int, acc_bound: int) -> np.ndarray | None:
    """ek_rq's parameters {m, 2^(e-1) + offset * 2^e[, e]} per channel (e = -shift), or None.

    The Cortex-M DSP path's requantization (kernels/ek_common.h): SMMULR of the
    doubled accumulator, two adds and a shift, exactly TFLM's double rounding
    plus the output offset. It needs every shift <= -1, accumulators below 2^30
    (so doubling them cannot overflow) and sums that stay in int32; otherwise
    the kernels keep ek_requantize_s8.
    """
    if "dsp" not in ctx.features or ctx.single_rounding or acc_bound >= RQ_ACC_LIMIT:
        return None
    if "mve" in ctx.features:  # the Helium requantization takes TFLM's multipliers and shifts
        return None
    mults = np.asarray(mults, dtype=np.int64).reshape(-1)
    e = -np.asarray(shifts, dtype=np.int64).reshape(-1)
    if np.any(e < 1) or np.any(e > 30):
        return None
    rnd = (np.int64(1) << (e - 1)) + np.int64(output_offset) * (np.int64(1) << e)
    # r + rnd - 1 with |r| <= |acc| < 2^30 must stay in int32
    if np.any(np.abs(rnd) + RQ_ACC_LIMIT + 1 >= 2**31):
        return None
    columns = [mults, rnd, e][: requant_stride(ctx)]
    return np.stack(columns, axis=1).reshape(-1).astype(np.int32)


def requant_args(ctx: EmitContext, mults, shifts, output_offset: int, acc_bound: int, hint: str) -> list[str]:
    """A kernel's `multiplier, shift, rq` arguments.

    With requant_params, `rq` is its stride (parameters per channel) when the
    C compiler takes the DSP path, and the multiplier array holds the
    parameters there (the shifts are then unused), the multipliers otherwise;
    else `rq` is 0.
    """
    params = requant_params(ctx, mults, shifts, output_offset, acc_bound)
    if params is None:
        return [ctx.const_array(mults, f"{hint}_mult"), ctx.const_array(shifts, f"{hint}_shift"), "0"]
    return [
        ctx.const_array_layouts("EK_USE_DSP", params, np.asarray(mults, np.int32), f"{hint}_mult"),
        ctx.const_array_layouts("EK_USE_DSP", np.zeros(1, np.int32), np.asarray(shifts, np.int32), f"{hint}_shift"),
        f"(EK_USE_DSP ? {requant_stride(ctx)} : 0)",
    ]


def conv_pixels(ctx: EmitContext) -> int:
    """Output pixels ek_conv_s8 computes together (EK_CONV_PIXELS): 4 for the lanes path, 2 on DSP."""
    return 2 if "dsp" in ctx.features else 4


def folded_dot_bias(
    ctx: EmitContext, bias: np.ndarray, input_offset: int, wsum: np.ndarray, hint: str, dsp_scale: int = 1
) -> str:
    """bias + (input_offset - EK_DOT_BIAS) * sum(w) per output, for whichever ek_dot the C compiles.

    ek_dot(x, w) sums (x + EK_DOT_BIAS) * w, so adding this gives the
    reference's sum of (x + input_offset) * w exactly. The DSP variant is
    multiplied by `dsp_scale`, like the filters it starts the sums of.
    """
    bias = np.asarray(bias, dtype=np.int64)
    wsum = np.asarray(wsum, dtype=np.int64)
    portable = int32_wrap(bias + (input_offset - DOT_BIAS) * wsum)
    dsp = int32_wrap((bias + input_offset * wsum) * dsp_scale)
    return ctx.const_array_choice(f"EK_DOT_BIAS == {DOT_BIAS}", portable, dsp, f"{hint}_folded_bias")


class _ConvBase(Emitter):
    depthwise = False

    def _tensors(self, node: Node, ctx: EmitContext):
        """Input, filter, bias (or None) and the convolution's own output (of a node fused with
        its ADD too, whose output is the ADD's: edgekit/aot/fuse.py)."""
        x, w = ctx.tensor(node.inputs[0]), ctx.tensor(node.inputs[1])
        bias = ctx.tensor(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] >= 0 else None
        return x, w, bias, ctx.tensor(node.option(FUSED_CONV_OUTPUT, node.outputs[0]))

    def fuses_add(self, node: Node, ctx: EmitContext) -> bool:
        """Whether this convolution can run fused with an int8 ADD that takes its output."""
        if self.depthwise or self.check(node, ctx) is not None:
            return False
        x, w, _, y = self._tensors(node, ctx)
        return x.dtype == "int8" and uses_taps(ctx, x.shape[3], y.shape[3], w.shape[1], w.shape[2])

    def check(self, node: Node, ctx: EmitContext) -> str | None:
        x, w, bias, y = self._tensors(node, ctx)
        if not w.is_const or (bias is not None and not bias.is_const):
            return "filter computed at run time"
        if len(w.shape) != 4:
            return "filter not 4-D"
        problem = weighted_types_problem(x, w, bias, y, "filter")
        if problem:
            return problem
        problem = window_check(node, x, y, w.shape[1], w.shape[2])
        if problem:
            return problem
        if self.depthwise:
            if w.shape[0] != 1 or w.shape[3] != y.shape[3]:
                return "filter shape inconsistent with the output"
            mult = y.shape[3] // max(x.shape[3], 1)
            if mult * x.shape[3] != y.shape[3]:
                return "output channels not a multiple of input channels"
        elif w.shape[3] != x.shape[3] or w.shape[0] != y.shape[3]:
            return "grouped convolution"
        return None

    def scratch_bytes(self, node: Node, ctx: EmitContext) -> int:
        y, w = ctx.tensor(node.outputs[0]), ctx.tensor(node.inputs[1])
        if y.dtype != "int8":
            return 0
        if self._compact(node, ctx):  # one pixel's accumulators (depthwise) or its window as int16
            return 4 * y.shape[3] if self.depthwise else 2 * w.shape[1] * w.shape[2] * w.shape[3]
        if self.depthwise:  # the ring, or one pixel's int32 accumulators and a row of the zero point
            ring = self._ring(node, ctx)
            return ring.nbytes if ring else 4 * y.shape[3] + ctx.tensor(node.inputs[0]).shape[3]
        if uses_taps(ctx, w.shape[3], y.shape[3], w.shape[1], w.shape[2]):
            return 8 * y.shape[3] + 4 * w.shape[3]  # a pair's accumulators, one widened tap
        # a group of pixels: a row of accumulators and a window patch each
        pix = conv_pixels(ctx)
        k_pad = dot_length(ctx, w.shape[1] * w.shape[2] * w.shape[3])
        widened = 2 * 2 * k_pad if wide_filters(ctx) else 0  # the DSP path's int16 windows
        return pix * 4 * acc_row(ctx, y.shape[3]) + pix * k_pad + widened

    def overwrites(self, node: Node, ctx: EmitContext) -> dict[int, int]:
        """int8: ek_conv_s8 and ek_depthwise_conv_s8 write a group of output pixels only after
        reading all their windows (the float kernels write channel by channel: never in place)."""
        x, w, _, y = self._tensors(node, ctx)
        if x.dtype != "int8":
            return {}
        win = resolve_window(node, x, y, w.shape[1], w.shape[2])
        ring = self._ring(node, ctx) if self.depthwise else None
        if ring is not None:
            return {0: ring_lag(win, ring.span)}
        lags = {0: window_lag(*win.args(), *win.kernel_args())}
        if node.option(FUSED_ADD) is not None:
            lags[RESIDUAL] = 0  # read element by element just before the output is written
        return lags

    def _ring(self, node: Node, ctx: EmitContext) -> Ring | None:
        """The depthwise ring of the DSP path, decided from the same requantization emit() takes."""
        x, w, bias, y = self._tensors(node, ctx)
        if x.dtype != "int8":
            return None
        win = resolve_window(node, x, y, w.shape[1], w.shape[2])
        _, _, rq, _ = self._requantization(node, ctx)
        return depthwise_ring(ctx, win, rq)

    def _requantization(self, node: Node, ctx: EmitContext):
        """(multipliers, shifts, ek_rq parameters or None, folded raw bias) of an int8 node."""
        x, w, bias, y = self._tensors(node, ctx)
        x_scale, _ = per_tensor_qparams(x)
        y_scale, y_zp = per_tensor_qparams(y)
        out_c = y.shape[3]
        mults, shifts = conv_multipliers(x_scale, w.scale, y_scale, out_c, ctx.single_rounding)
        raw_bias = (
            np.asarray(bias.data, dtype=np.int64).reshape(-1)
            if bias is not None
            else np.zeros(out_c, dtype=np.int64)
        )
        filt = np.asarray(w.data, dtype=np.int64)
        rows = np.moveaxis(filt, 3, 0) if self.depthwise else filt
        rq = requant_params(ctx, mults, shifts, y_zp, accumulator_bound(raw_bias, rows))
        return mults, shifts, rq, raw_bias

    def emit(self, node: Node, ctx: EmitContext) -> str:
        x, w, bias, y = self._tensors(node, ctx)
        k_h, k_w = w.shape[1], w.shape[2]
        win = resolve_window(node, x, y, k_h, k_w)
        activation = node.option("fused_activation_function", "NONE")
        dm = [win.out_c // win.in_c] if self.depthwise else []
        if x.dtype == "float32":
            lo, hi = activation_range_float(activation)
            fn = "ek_depthwise_conv_f32" if self.depthwise else "ek_conv_f32"
            return call(
                fn, ctx.ptr(x.index), ctx.ptr(w.index),
                ctx.ptr(bias.index) if bias is not None else "(const float *)0",
                ctx.ptr(y.index), *win.args(), *dm, *win.kernel_args(),
                float_literal(lo), float_literal(hi),
            )  # fmt: skip

        if self._compact(node, ctx):
            return self._emit_compact(node, ctx, win, activation)
        x_scale, x_zp = per_tensor_qparams(x)
        y_scale, y_zp = per_tensor_qparams(y)
        mults, shifts = conv_multipliers(x_scale, w.scale, y_scale, win.out_c, ctx.single_rounding)
        filt = np.asarray(w.data, dtype=np.int64)
        raw_bias = (
            np.asarray(bias.data, dtype=np.int64).reshape(-1)
            if bias is not None
            else np.zeros(win.out_c, dtype=np.int64)
        )
        # interior pixels see every tap: bias + input_offset * sum(w) is exact there
        act_min, act_max = activation_range_int8(activation, y_scale, y_zp)
        right_shifts_only = shift_kind(shifts)
        rows = np.moveaxis(filt, 3, 0) if self.depthwise else filt
        bound = accumulator_bound(raw_bias, rows)
        rq = requant_params(ctx, mults, shifts, y_zp, bound)
        # the int16 layout of ek_depthwise_conv_s8's DSP loop, which takes up to EK_DW_MAX_TAPS taps
        dsp_dw = (self.depthwise and wide_filters(ctx) and dm == [1] and win.in_c % 4 == 0
                  and k_h * k_w <= DW_MAX_TAPS)  # fmt: skip
        # the DSP path's int16 filters are stored doubled when the requantization takes
        # doubled accumulators: the doubling is then free
        scale = 2 if rq is not None and (dsp_dw or (wide_filters(ctx) and not self.depthwise)) else 1
        ring = depthwise_ring(ctx, win, rq) if self.depthwise else None
        if ring is not None:
            return self._emit_ring(node, ctx, win, ring, raw_bias, rq, act_min, act_max)
        # exactly the case in which ek_conv.h calls ek_mve_depthwise_pixel (when EK_MVE), which
        # reads the per-channel arrays (out_c of each: conv_multipliers broadcasts) in lane order
        mve_dw = (self.depthwise and "mve" in ctx.features and dm == [1] and k_h * k_w <= DW_MAX_TAPS
                  and not ctx.single_rounding)  # fmt: skip
        if mve_dw:
            mults, shifts = (
                ctx.const_array_layouts("EK_MVE", mve_lane_order(v, win.out_c), np.asarray(v, np.int32), f"{y.name}_{k}")
                for v, k in ((mults, "mult"), (shifts, "shift"))
            )
            rq_flag = "0"
        else:
            mults, shifts, rq_flag = requant_args(ctx, mults, shifts, y_zp, bound, y.name)
        rq_args = [rq_flag, 2 // scale]
        taps = not self.depthwise and uses_taps(ctx, win.in_c, win.out_c, k_h, k_w)
        if self.depthwise or taps:  # no EK_DOT_BIAS: these kernels multiply x itself
            folded_dw = int32_wrap(raw_bias + (-x_zp) * rows.reshape(win.out_c, -1).sum(axis=1))
            if mve_dw:
                folded = ctx.const_array_layouts(
                    "EK_MVE", mve_lane_order(folded_dw, win.out_c), folded_dw, f"{y.name}_folded_bias"
                )
            elif scale == 2:
                folded = ctx.const_array_layouts(
                    "EK_USE_DSP", int32_wrap(folded_dw.astype(np.int64) * 2), folded_dw, f"{y.name}_folded_bias"
                )
            else:
                folded = ctx.const_array(folded_dw, f"{y.name}_folded_bias")
        else:
            folded = folded_dot_bias(ctx, raw_bias, -x_zp, filt.sum(axis=(1, 2, 3)), y.name, scale)
        acc = f"(int32_t *){ctx.scratch(node)}"
        if self.depthwise:
            if dsp_dw:
                filt_name = ctx.const_array_layouts(
                    "EK_USE_DSP", depthwise_dsp_filter(w.data, scale), np.asarray(w.data, np.int8), f"{y.name}_filter"
                )
            elif "dsp" not in ctx.features and dm == [1] and win.in_c % 16 == 0 and k_h * k_w <= DW_MAX_TAPS:
                # hosts: pairs of taps interleaved when the C compiler takes the AVX2 path (kernels/ek_x86.h)
                filt_name = ctx.const_array_layouts(
                    "EK_X86_CONV", x86_depthwise_filter(w.data), np.asarray(w.data, np.int8), f"{y.name}_filter"
                )
            else:
                filt_name = ctx.ptr(w.index)
            names = [ctx.ptr(x.index), filt_name, folded, mults, shifts, *rq_args, int(dsp_dw),
                     ctx.ptr(y.index), acc]  # fmt: skip
            return call("ek_depthwise_conv_s8", *names, *win.args(), *dm, *win.kernel_args(),
                        -x_zp, y_zp, act_min, act_max, right_shifts_only)  # fmt: skip
        if taps:
            return self._emit_taps(node, ctx, win, x_zp, y_zp, folded, scale,
                                   [mults, shifts, *rq_args], [act_min, act_max, right_shifts_only])
        k_pad = dot_length(ctx, k_h * k_w * win.in_c)
        filters = dot_rows(ctx, w.data, k_pad, f"{y.name}_filter", scale)
        # the window patches sit after the rows of accumulators in the node's scratch
        patch = f"(int8_t *)((uint8_t *){ctx.scratch(node)} + {conv_pixels(ctx) * 4 * acc_row(ctx, win.out_c)})"
        names = [ctx.ptr(x.index), filters, folded, mults, shifts, *rq_args, int(wide_filters(ctx)),
                 ctx.ptr(y.index), acc, patch]  # fmt: skip
        k_args = win.kernel_args()
        return call("ek_conv_s8", *names, *win.args(), *k_args[:2], k_pad, *k_args[2:],
                    -x_zp, y_zp, act_min, act_max, right_shifts_only)  # fmt: skip

    def _compact(self, node: Node, ctx: EmitContext) -> bool:
        """Whether an int8 node runs ek_compact.h's kernels (`--optimize size`, not on Helium)."""
        return ctx.tensor(node.inputs[0]).dtype == "int8" and channel_params.applies(ctx)

    def _emit_compact(self, node: Node, ctx: EmitContext, win: Window, activation: str) -> str:
        """ek_conv_compact_s8 or ek_depthwise_compact_s8: the model's filter as it is, the raw
        bias and one word of requantization per channel."""
        x, w, _, y = self._tensors(node, ctx)
        _, x_zp = per_tensor_qparams(x)
        y_scale, y_zp = per_tensor_qparams(y)
        mults, shifts, _, raw_bias = self._requantization(node, ctx)
        act_min, act_max = activation_range_int8(activation, y_scale, y_zp)
        params = channel_params.arrays(ctx, y.name, raw_bias, mults, shifts)
        tail = [-x_zp, y_zp, act_min, act_max]
        if self.depthwise:
            return call("ek_depthwise_compact_s8", ctx.ptr(x.index), ctx.ptr(w.index), *params, ctx.ptr(y.index),
                        f"(int32_t *){ctx.scratch(node)}", *win.args()[:4], win.out_h, win.out_w,
                        win.out_c // win.in_c, *win.kernel_args(), *tail)  # fmt: skip
        return call("ek_conv_compact_s8", ctx.ptr(x.index), ctx.ptr(w.index), *params, ctx.ptr(y.index),
                    f"(int16_t *){ctx.scratch(node)}", *win.args(), *win.kernel_args(), *tail)  # fmt: skip

    def _emit_taps(self, node, ctx, win, x_zp, y_zp, folded_name, scale, requant, activation) -> str:
        """ek_conv_taps_s8, with the ADD it is fused with when there is one."""
        x, w, _, y = self._tensors(node, ctx)
        filters = ctx.const_array_layouts(
            "EK_USE_DSP", taps_dsp_filter(w.data, scale), np.asarray(w.data, np.int8).reshape(win.out_c, -1),
            f"{y.name}_filter",
        )
        zero_tap = ctx.const_array(np.full(win.in_c, x_zp, dtype=np.int8), f"{y.name}_zero_tap")
        add_node = node.option(FUSED_ADD)
        if add_node is None:  # no residual; the ADD's two tables and 13 numbers unused
            fused = ["(const int8_t *)0", 0, "(const int32_t *)0", "(const int32_t *)0", *[0] * 13]
        else:
            a, b = ctx.tensor(add_node.inputs[0]), ctx.tensor(add_node.inputs[1])
            params = emitter_for("ADD").int8_params(add_node, ctx, a, b, ctx.tensor(add_node.outputs[0]))
            residual = node.inputs[RESIDUAL]
            fused = [ctx.ptr(residual), int(add_node.inputs[0] == residual), *params]
        return call("ek_conv_taps_s8", ctx.ptr(x.index), filters, folded_name, *requant, zero_tap,
                    ctx.ptr(node.outputs[0]), f"(int32_t *){ctx.scratch(node)}", *win.args(),
                    *win.kernel_args(), y_zp, *activation, *fused)  # fmt: skip


    def _emit_ring(self, node: Node, ctx: EmitContext, win: Window, ring: Ring, raw_bias: np.ndarray,
                   rq: np.ndarray, act_min: int, act_max: int) -> str:  # fmt: skip
        """DEPTHWISE_CONV_2D through ek_depthwise_dsp_s8, reading one run of flash per group of
        four channels (depthwise_ring_params)."""
        x, w, _, y = self._tensors(node, ctx)
        _, x_zp = per_tensor_qparams(x)
        folded_dw = int32_wrap(raw_bias + (-x_zp) * np.asarray(w.data, dtype=np.int64).sum(axis=(0, 1, 2)))
        params = ctx.const_array(depthwise_ring_params(w.data, folded_dw, rq, ring.channels), f"{y.name}_params")
        return call(
            "ek_depthwise_dsp_s8", ctx.ptr(x.index), params, ctx.ptr(y.index),
            f"(int16_t *){ctx.scratch(node)}", *win.args(), win.out_c // win.in_c, *win.kernel_args(),
            ring.width, -x_zp, act_min, act_max,
        )  # fmt: skip


#: options of a CONV_2D fused with the ADD that consumes it (edgekit/aot/fuse.py): the ADD
#: node, and the convolution's own output tensor (no longer written); the ADD's other input
#: is the fused node's input RESIDUAL
FUSED_ADD = "ek_fused_add"
FUSED_CONV_OUTPUT = "ek_conv_output"
RESIDUAL = 3


@register
class Conv2D(_ConvBase):
    opcodes = ("CONV_2D",)
    kernels = ("ek_mve.h", "ek_x86.h", "ek_conv.h", "ek_add.h", "ek_conv_taps.h", "ek_compact.h")  # ek_conv.h calls into ek_mve.h and ek_x86.h


@register
class DepthwiseConv2D(_ConvBase):
    opcodes = ("DEPTHWISE_CONV_2D",)
    kernels = ("ek_mve.h", "ek_x86.h", "ek_conv.h", "ek_depthwise_dsp.h", "ek_compact.h")
    depthwise = True
