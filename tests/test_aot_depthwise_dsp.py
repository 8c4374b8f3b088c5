"""The Cortex-M DSP path's depthwise kernel (kernels/ek_depthwise_dsp.h): bit-exact with TFLM.

The kernel copies the input rows a window needs into a ring of padded rows and
reads every tap at a constant offset. Its arithmetic runs as assembly on the
emulated Cortex-M4 and as portable C where the C compiler lacks the DSP
instructions (a `dsp` bundle built for the host), so the shape sweep runs on
the host and the assembly on QEMU. Depthwise shapes: channel counts that are
not multiples of 4, depth multipliers, strides, dilations, both paddings,
batches, kernels up to the ring's limit and past it, and outputs written over
their inputs.
"""

from __future__ import annotations


import numpy as np
import pytest

from edgekit.aot.ops.conv import RING_MAX_SPAN, Window, compute_out_size, compute_padding, ring_lag
from tests.test_aot_builder import (
    ModelBuilder,
    assert_bit_exact_on_emulated_cortex_m4,
    assert_bit_exact_with_tflm,
    needs_emulator,
)
from tests.test_aot_ops import conv_model

DSP = frozenset({"dsp"})

CASES = {
    "kws-64ch-3x3-same": dict(c=64, h=9, w=5),
    "6ch-not-multiple-of-4": dict(c=6),
    "1ch": dict(c=1, h=5, w=5),
    "multiplier2-stride2": dict(c=3, mult=2, stride=(2, 2), h=9, w=8),
    "multiplier3-5x5-valid": dict(c=5, mult=3, k=(5, 5), padding="VALID", h=9, w=7, stride=(2, 1)),
    "dilation2": dict(c=4, dilation=(2, 2), h=8, w=8),
    "dilation-3x1": dict(c=8, k=(3, 1), dilation=(3, 1), h=10, w=4),
    "1x3-relu6-saturating": dict(c=12, k=(1, 3), act="RELU6", saturate=True),
    "batch2-per-tensor": dict(c=7, n=2, per_channel=False, act="RELU"),
    "7x7-stride3": dict(c=4, k=(7, 7), stride=(3, 3), h=11, w=10),
    "past-the-ring": dict(c=4, k=(3, 3), dilation=(8, 1), h=19, w=4),
}
#: cases ek_depthwise_conv_s8 takes: a window of 17 rows with dilation; shifts >= 0 (the
#: saturating scale), which ek_rq's requantization does not take
OTHER_KERNEL = {"past-the-ring", "1x3-relu6-saturating"}


def _bound_model(case: str, inner: bool) -> bytes:
    return conv_model(depthwise=True, **CASES[case], seed=len(case), inner=inner)


@pytest.mark.parametrize("case", sorted(CASES))
def test_ring_kernel_is_bit_exact_with_tflm_and_may_write_over_its_input(case, tmp_path):
    """Built for the host from a `dsp` bundle: the ring kernel in portable C, its input and
    output in the arena (between two QUANTIZE ops) so the planner may overlap them."""
    assert_bit_exact_with_tflm(_bound_model(case, inner=True), tmp_path, count=6, features=DSP)
    source = (tmp_path / "m" / "m.c").read_text()
    assert ("ek_depthwise_dsp_s8(" in source.split("/* ---- operators ---- */")[1]) == (case not in OTHER_KERNEL)


def test_the_kws_shape_is_written_over_its_input_without_lag(tmp_path):
    """A 3x3 SAME depthwise of one stride: an output row is written after the next input row is
    copied into the ring, so the output can start where the input does."""
    bundle = assert_bit_exact_with_tflm(_bound_model("kws-64ch-3x3-same", inner=True), tmp_path, count=4,
                                        features=DSP)  # fmt: skip
    plan = bundle.plan
    ((out, inp), lag), = plan.overwrites.items()
    assert lag == 0 and plan.offsets[out] == plan.offsets[inp]


def _ring_clobbers_a_read(win: Window, span: int, lag: int) -> bool:
    """The ring kernel's access order, byte by byte: before each output row, the input rows its
    windows need that are not in their slot (y mod span) are read; then the row is written,
    `lag` bytes before the input. True if a read meets a byte already written over."""
    row_in, row_out = win.in_w * win.in_c, win.out_w * win.out_c
    clobbered = np.zeros(win.batches * win.in_h * row_in, dtype=bool)
    slot = {}
    for b in range(win.batches):
        slot = {s: (-1 if r == -1 else None) for s, r in slot.items()}  # rows of another batch
        for oy in range(win.out_h):
            for ky in range(win.k_h):
                y = oy * win.stride_h - win.pad_h + ky * win.dil_h
                want = y if 0 <= y < win.in_h else -1
                if slot.get(y % span, -1) != want:
                    if want >= 0:
                        start = (b * win.in_h + y) * row_in
                        if clobbered[start : start + row_in].any():
                            return True
                    slot[y % span] = want
            end = (b * win.out_h + oy + 1) * row_out - lag
            if end > 0:
                clobbered[: min(end, clobbered.size)] = True
    return False


LAG_WINDOWS = {
    "3x3-same": dict(n=1, h=5, w=6, c=4, m=1, k=(3, 3), s=(1, 1), d=(1, 1), pad="SAME"),
    "multiplier2": dict(n=1, h=6, w=5, c=3, m=2, k=(3, 3), s=(1, 1), d=(1, 1), pad="SAME"),
    "multiplier3-stride2": dict(n=2, h=8, w=8, c=2, m=3, k=(3, 3), s=(2, 2), d=(1, 1), pad="SAME"),
    "dilated-batch2": dict(n=2, h=7, w=6, c=3, m=1, k=(3, 3), s=(1, 1), d=(2, 2), pad="SAME"),
    "5x5-valid": dict(n=1, h=9, w=7, c=4, m=1, k=(5, 5), s=(1, 1), d=(1, 1), pad="VALID"),
    "stride-past-the-window": dict(n=1, h=12, w=4, c=2, m=4, k=(2, 1), s=(3, 1), d=(1, 1), pad="VALID"),
}


@pytest.mark.parametrize("case", sorted(LAG_WINDOWS))
def test_ring_lag_is_the_least_that_never_clobbers_a_read(case):
    p = LAG_WINDOWS[case]
    out_h = compute_out_size(p["pad"], p["h"], p["k"][0], p["s"][0], p["d"][0])
    out_w = compute_out_size(p["pad"], p["w"], p["k"][1], p["s"][1], p["d"][1])
    win = Window(batches=p["n"], in_h=p["h"], in_w=p["w"], in_c=p["c"], out_h=out_h, out_w=out_w,
                 out_c=p["c"] * p["m"], k_h=p["k"][0], k_w=p["k"][1], stride_h=p["s"][0], stride_w=p["s"][1],
                 dil_h=p["d"][0], dil_w=p["d"][1],
                 pad_h=compute_padding(p["s"][0], p["d"][0], p["h"], p["k"][0], out_h),
                 pad_w=compute_padding(p["s"][1], p["d"][1], p["w"], p["k"][1], out_w))  # fmt: skip
    span = (win.k_h - 1) * win.dil_h + 1
    assert span <= RING_MAX_SPAN
    lag = ring_lag(win, span)
    assert not _ring_clobbers_a_read(win, span, lag)
    if lag > 0:
        assert _ring_clobbers_a_read(win, span, lag - 1)


# ---- the assembly on the emulated Cortex-M4 ----------------------------------------------------

#: one branch per input: a chain of depthwise layers (channels, multiplier, kernel, stride, dilation, padding)
BRANCHES = [
    (64, [(1, (3, 3), (1, 1), (1, 1), "SAME"), (1, (3, 3), (1, 1), (1, 1), "SAME")]),
    (6, [(1, (3, 3), (2, 2), (1, 1), "SAME"), (2, (3, 3), (1, 1), (2, 2), "SAME")]),
    (3, [(3, (5, 5), (1, 2), (1, 1), "VALID"), (1, (1, 3), (1, 1), (1, 1), "SAME")]),
]


def _branches_model(seed: int = 3) -> bytes:
    """Several depthwise chains in one model (one firmware build), each layer's input and output
    in the arena, so layers are written over their inputs where the planner can."""
    rng = np.random.default_rng(seed)
    b = ModelBuilder()
    inputs, outputs = [], []
    for c, layers in BRANCHES:
        h, w = 11, 9
        scale, zp = 0.02, int(rng.integers(-20, 20))
        x = b.tensor((1, h, w, c), scale=scale, zero_point=zp)
        inputs.append(x)
        cur = b.tensor((1, h, w, c), scale=scale, zero_point=zp)
        b.op("QUANTIZE", [x], [cur])
        for mult, k, stride, dil, pad in layers:
            oc = c * mult
            oh = compute_out_size(pad, h, k[0], stride[0], dil[0])
            ow = compute_out_size(pad, w, k[1], stride[1], dil[1])
            w_scale = rng.uniform(0.002, 0.02, size=oc)
            f = b.tensor((1, k[0], k[1], oc), data=rng.integers(-127, 128, size=(1, k[0], k[1], oc)),
                         scale=w_scale, zero_point=0, axis=3)  # fmt: skip
            bias = b.tensor((oc,), "int32", data=rng.integers(-3000, 3000, size=oc), scale=scale * w_scale)
            out_scale = float(scale * np.mean(w_scale) * np.sqrt(k[0] * k[1]) * 40 / rng.uniform(0.5, 2))
            out_zp = int(rng.integers(-20, 20))
            y = b.tensor((1, oh, ow, oc), scale=out_scale, zero_point=out_zp)
            b.op("DEPTHWISE_CONV_2D", [cur, f, bias], [y], depth_multiplier=mult, padding=pad,
                 stride_h=stride[0], stride_w=stride[1], dilation_h_factor=dil[0], dilation_w_factor=dil[1],
                 fused_activation_function="RELU")  # fmt: skip
            cur, c, h, w, scale, zp = y, oc, oh, ow, out_scale, out_zp
        out = b.tensor((1, h, w, c), scale=scale, zero_point=zp)
        b.op("QUANTIZE", [cur], [out])
        outputs.append(out)
    return b.build(inputs, outputs)


@pytest.mark.slow
@needs_emulator
@pytest.mark.parametrize("optimize", ["balanced", "speed"])
def test_ring_kernel_assembly_on_emulated_cortex_m4_matches_tflm(optimize, tmp_path):
    model = tmp_path / "dw_branches.tflite"
    model.write_bytes(_branches_model())
    assert_bit_exact_on_emulated_cortex_m4(model, optimize, count=3, seed=5)
