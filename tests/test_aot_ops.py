"""Per-operator exactness of the aot compiler: int8 bit-exact with TFLM, float32 close to LiteRT.

Each case writes a one-operator model with chosen shapes, strides, paddings,
dilations and quantization (negative zero points, saturating output scales),
compiles it, builds it with the host C compiler and compares on random inputs.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.aot.ops.conv import compute_out_size
from tests.test_aot_builder import ModelBuilder, assert_bit_exact_with_tflm, assert_close_to_litert, kernel_harness

INT8 = "int8"


def _out_scale(rng, in_scale, w_scale, k, saturate):
    # about where int8 outputs spread over their range; `saturate` shrinks it 50x so many clip
    base = in_scale * float(np.mean(w_scale)) * np.sqrt(k) * 40.0
    return float(base / (50.0 if saturate else rng.uniform(0.5, 2.0)))


def conv_model(
    *, n=1, h=7, w=6, c=3, oc=4, k=(3, 3), stride=(1, 1), dilation=(1, 1), padding="SAME",
    act="NONE", depthwise=False, mult=1, in_zp=-5, out_zp=3, per_channel=True, saturate=False,
    dtype=INT8, bias=True, out_scale=None, seed=0, inner=False, bias_limit=3000, w_scales=(0.002, 0.02),
):  # fmt: skip
    """One convolution; `inner` (int8) puts it between two QUANTIZE ops of unchanged scale, so
    its input and output are the model's own tensors (in the arena) rather than the caller's.
    Biases are drawn below `bias_limit`, per-channel filter scales from the range `w_scales`."""
    rng = np.random.default_rng(seed)
    out_c = c * mult if depthwise else oc
    out_h = compute_out_size(padding, h, k[0], stride[0], dilation[0])
    out_w = compute_out_size(padding, w, k[1], stride[1], dilation[1])
    fshape = (1, k[0], k[1], out_c) if depthwise else (out_c, k[0], k[1], c)
    b = ModelBuilder()
    if dtype == INT8:
        in_scale = 0.02
        w_scale = rng.uniform(*w_scales, size=out_c) if per_channel else np.array([0.01])
        if out_scale is None:
            out_scale = _out_scale(rng, in_scale, w_scale, k[0] * k[1] * (1 if depthwise else c), saturate)
        x = b.tensor((n, h, w, c), scale=in_scale, zero_point=in_zp)
        f = b.tensor(fshape, data=rng.integers(-127, 128, size=fshape), scale=w_scale,
                     zero_point=0, axis=3 if depthwise else 0)  # fmt: skip
        bt = (
            b.tensor((out_c,), "int32", data=rng.integers(-bias_limit, bias_limit, size=out_c), scale=in_scale * w_scale)
            if bias
            else -1
        )
        y = b.tensor((n, out_h, out_w, out_c), scale=out_scale, zero_point=out_zp)
    else:
        x = b.tensor((n, h, w, c), "float32")
        f = b.tensor(fshape, "float32", data=rng.standard_normal(fshape).astype(np.float32))
        bt = b.tensor((out_c,), "float32", data=rng.standard_normal(out_c).astype(np.float32)) if bias else -1
        y = b.tensor((n, out_h, out_w, out_c), "float32")
    opts = dict(padding=padding, stride_h=stride[0], stride_w=stride[1],
                dilation_h_factor=dilation[0], dilation_w_factor=dilation[1],
                fused_activation_function=act)  # fmt: skip
    model_in, model_out = x, y
    if inner:
        model_in = b.tensor((n, h, w, c), scale=in_scale, zero_point=in_zp)
        model_out = b.tensor((n, out_h, out_w, out_c), scale=out_scale, zero_point=out_zp)
        b.op("QUANTIZE", [model_in], [x])
    if depthwise:
        b.op("DEPTHWISE_CONV_2D", [x, f, bt], [y], depth_multiplier=mult, **opts)
    else:
        b.op("CONV_2D", [x, f, bt], [y], **opts)
    if inner:
        b.op("QUANTIZE", [y], [model_out])
    return b.build([model_in], [model_out])


CONV_CASES = {
    "3x3-same": dict(),
    "1x1-pointwise": dict(k=(1, 1), c=16, oc=24),
    "stride2-same-relu": dict(stride=(2, 2), act="RELU", h=9, w=8),
    "valid-relu6": dict(padding="VALID", act="RELU6", in_zp=100, out_zp=-100),
    "kws-like-10x4-stride2": dict(h=13, w=10, c=1, oc=8, k=(10, 4), stride=(2, 2)),
    "dilation2": dict(dilation=(2, 2), h=9, w=9),
    "dilation-stride-mixed-valid": dict(dilation=(1, 2), stride=(2, 1), padding="VALID", h=10, w=10),
    "saturating-neg-zero-points": dict(saturate=True, in_zp=-128, out_zp=-60),
    "per-tensor-no-bias-batch2": dict(per_channel=False, bias=False, n=2),
    "wide-kernel-even": dict(k=(2, 4), stride=(1, 3), h=5, w=11, act="RELU_N1_TO_1"),
    "odd-channels-5x5": dict(c=5, oc=7, k=(5, 5), h=6, w=6),
    # effective multipliers above 1 (positive shifts): the left-shift path of the requantization
    "gain-above-one": dict(out_scale=1e-4, in_zp=0, out_zp=0),
}


@pytest.mark.parametrize("case", sorted(CONV_CASES))
def test_conv2d_int8_matches_tflm(case, tmp_path):
    assert_bit_exact_with_tflm(conv_model(**CONV_CASES[case], seed=len(case)), tmp_path)


DW_CASES = {
    "3x3-same": dict(c=8),
    "stride2-valid-relu": dict(c=5, stride=(2, 2), padding="VALID", act="RELU", h=9, w=9),
    "multiplier2": dict(c=3, mult=2),
    "multiplier3-stride2": dict(c=2, mult=3, stride=(2, 2), act="RELU6"),
    "dilation2": dict(c=4, dilation=(2, 2), h=8, w=8),
    "saturating": dict(c=6, saturate=True, in_zp=127, out_zp=-128),
    "gain-above-one": dict(c=4, out_scale=2e-5, in_zp=0, out_zp=0),
    "per-tensor-5x1": dict(c=7, per_channel=False, k=(5, 1)),
}


@pytest.mark.parametrize("case", sorted(DW_CASES))
def test_depthwise_conv2d_int8_matches_tflm(case, tmp_path):
    assert_bit_exact_with_tflm(conv_model(depthwise=True, **DW_CASES[case], seed=len(case)), tmp_path)


def fc_model(*, batch=1, depth=20, units=7, in_zp=-7, out_zp=4, per_channel=False, act="NONE",
             saturate=False, bias=True, dtype=INT8, out_scale=None, seed=0):  # fmt: skip
    rng = np.random.default_rng(seed)
    b = ModelBuilder()
    if dtype == INT8:
        in_scale = 0.03
        w_scale = rng.uniform(0.002, 0.02, size=units) if per_channel else np.array([0.01])
        x = b.tensor((batch, depth), scale=in_scale, zero_point=in_zp)
        w = b.tensor((units, depth), data=rng.integers(-127, 128, size=(units, depth)),
                     scale=w_scale, zero_point=0)  # fmt: skip
        bt = b.tensor((units,), "int32", data=rng.integers(-5000, 5000, size=units),
                      scale=in_scale * w_scale) if bias else -1  # fmt: skip
        if out_scale is None:
            out_scale = _out_scale(rng, in_scale, w_scale, depth, saturate)
        y = b.tensor((batch, units), scale=out_scale, zero_point=out_zp)
    else:
        x = b.tensor((batch, depth), "float32")
        w = b.tensor((units, depth), "float32", data=rng.standard_normal((units, depth)).astype(np.float32))
        bt = b.tensor((units,), "float32", data=rng.standard_normal(units).astype(np.float32)) if bias else -1
        y = b.tensor((batch, units), "float32")
    b.op("FULLY_CONNECTED", [x, w, bt], [y], fused_activation_function=act)
    return b.build([x], [y])


FC_CASES = {
    "plain": dict(),
    "per-channel-relu": dict(per_channel=True, act="RELU", units=9, depth=33),
    "batch3-no-bias": dict(batch=3, bias=False),
    "saturating": dict(saturate=True, in_zp=127, out_zp=-128),
    "long-depth-relu6": dict(depth=640, units=16, act="RELU6"),
    "three-units-short-depth": dict(depth=8, units=3),
    "ragged-blocks": dict(depth=33, units=38, per_channel=True),
    "gain-above-one": dict(out_scale=1e-4, in_zp=0, out_zp=0, bias=False),
}


@pytest.mark.parametrize("case", sorted(FC_CASES))
def test_fully_connected_int8_matches_tflm(case, tmp_path):
    assert_bit_exact_with_tflm(fc_model(**FC_CASES[case], seed=len(case)), tmp_path)


def pool_model(*, kind="AVERAGE_POOL_2D", h=7, w=9, c=5, k=(2, 2), stride=(2, 2), padding="VALID",
               act="NONE", zp=-9, dtype=INT8):  # fmt: skip
    out_h = compute_out_size(padding, h, k[0], stride[0], 1)
    out_w = compute_out_size(padding, w, k[1], stride[1], 1)
    b = ModelBuilder()
    q = dict(scale=0.05, zero_point=zp) if dtype == INT8 else {}
    x = b.tensor((1, h, w, c), dtype, **q)
    y = b.tensor((1, out_h, out_w, c), dtype, **q)
    b.op(kind, [x], [y], padding=padding, stride_h=stride[0], stride_w=stride[1],
         filter_height=k[0], filter_width=k[1], fused_activation_function=act)  # fmt: skip
    return b.build([x], [y])


POOL_CASES = {
    "avg-2x2-valid": dict(),
    "avg-3x3-same-stride1": dict(k=(3, 3), stride=(1, 1), padding="SAME"),
    "avg-global-kws": dict(h=25, w=5, c=16, k=(25, 5), stride=(1, 1)),
    "avg-same-stride2-relu6": dict(k=(3, 3), padding="SAME", act="RELU6", zp=60),
    "max-2x2-valid": dict(kind="MAX_POOL_2D"),
    "max-3x3-same-relu": dict(kind="MAX_POOL_2D", k=(3, 3), stride=(2, 2), padding="SAME", act="RELU"),
}


@pytest.mark.parametrize("case", sorted(POOL_CASES))
def test_pool_int8_matches_tflm(case, tmp_path):
    assert_bit_exact_with_tflm(pool_model(**POOL_CASES[case]), tmp_path)


def add_model(*, a_shape=(1, 4, 5, 6), b_shape=(1, 4, 5, 6), scales=(0.05, 0.08, 0.1),
              zps=(-3, 10, -2), act="NONE", dtype=INT8, const_b=False, seed=0):  # fmt: skip
    rng = np.random.default_rng(seed)
    out_shape = tuple(np.broadcast_shapes(a_shape, b_shape))
    builder = ModelBuilder()

    def q(i):
        return dict(scale=scales[i], zero_point=zps[i]) if dtype == INT8 else {}

    a = builder.tensor(a_shape, dtype, **q(0))
    if const_b:
        data = (rng.integers(-128, 128, size=b_shape) if dtype == INT8
                else rng.standard_normal(b_shape).astype(np.float32))  # fmt: skip
        bb = builder.tensor(b_shape, dtype, data=data, **q(1))
    else:
        bb = builder.tensor(b_shape, dtype, **q(1))
    y = builder.tensor(out_shape, dtype, **q(2))
    builder.op("ADD", [a, bb], [y], fused_activation_function=act)
    return builder.build([a] if const_b else [a, bb], [y])


ADD_CASES = {
    "same-shape": dict(),
    "same-shape-relu-saturating": dict(scales=(0.05, 0.08, 0.004), act="RELU"),
    "equal-scales-ties": dict(scales=(0.1, 0.1, 0.2), zps=(0, 0, 0)),
    "broadcast-channel-const": dict(b_shape=(6,), const_b=True),
    "broadcast-inner-outer-const": dict(a_shape=(2, 1, 3), b_shape=(1, 4, 1), const_b=True, act="RELU6"),
}


@pytest.mark.parametrize("case", sorted(ADD_CASES))
def test_add_int8_matches_tflm(case, tmp_path):
    assert_bit_exact_with_tflm(add_model(**ADD_CASES[case], seed=len(case)), tmp_path)


def softmax_model(*, shape=(1, 10), in_scale=0.1, in_zp=-20, beta=1.0, dtype=INT8):
    b = ModelBuilder()
    if dtype == INT8:
        x = b.tensor(shape, scale=in_scale, zero_point=in_zp)
        y = b.tensor(shape, scale=1.0 / 256, zero_point=-128)
    else:
        x = b.tensor(shape, "float32")
        y = b.tensor(shape, "float32")
    b.op("SOFTMAX", [x], [y], beta=beta)
    return b.build([x], [y])


SOFTMAX_CASES = {
    "kws-like": dict(shape=(1, 12), in_scale=0.0625, in_zp=10),
    "rows-small-scale": dict(shape=(3, 2, 7), in_scale=0.004),
    "large-scale-beta": dict(shape=(1, 16), in_scale=0.5, beta=2.5),
    "wide": dict(shape=(1, 300), in_scale=0.02, in_zp=-128),
}


@pytest.mark.parametrize("case", sorted(SOFTMAX_CASES))
def test_softmax_int8_matches_tflm(case, tmp_path):
    assert_bit_exact_with_tflm(softmax_model(**SOFTMAX_CASES[case]), tmp_path, count=30)


def test_reshape_between_ops_shares_memory_and_matches_tflm(tmp_path):
    b = ModelBuilder()
    x = b.tensor((1, 2, 3, 4), scale=0.1, zero_point=1)
    p = b.tensor((1, 1, 1, 4), scale=0.1, zero_point=1)
    r = b.tensor((1, 4), scale=0.1, zero_point=1)
    s = b.tensor((1, 4), scale=1.0 / 256, zero_point=-128)
    b.op("MAX_POOL_2D", [x], [p], padding="VALID", stride_h=1, stride_w=1, filter_height=2, filter_width=3)
    b.op("RESHAPE", [p], [r], new_shape=[1, 4])
    b.op("SOFTMAX", [r], [s], beta=1.0)
    bundle = assert_bit_exact_with_tflm(b.build([x], [s]), tmp_path)
    assert bundle.plan.roots[r] == p  # no copy: the reshape is the pool output reinterpreted


def test_reshape_to_model_output_copies(tmp_path):
    b = ModelBuilder()
    x = b.tensor((1, 2, 2, 3), scale=0.1, zero_point=0)
    p = b.tensor((1, 1, 1, 3), scale=0.1, zero_point=0)
    r = b.tensor((1, 3), scale=0.1, zero_point=0)
    b.op("AVERAGE_POOL_2D", [x], [p], padding="VALID", stride_h=1, stride_w=1, filter_height=2, filter_width=2)
    b.op("RESHAPE", [p], [r], new_shape=[1, 3])
    bundle = assert_bit_exact_with_tflm(b.build([x], [r]), tmp_path)
    assert "memmove" in bundle.source


# ----- float32 within 1e-5 of LiteRT -------------------------------------------------------

FLOAT_CASES = {
    "conv-3x3-same-relu": lambda: conv_model(dtype="float32", act="RELU"),
    "conv-stride2-dilated-valid": lambda: conv_model(dtype="float32", stride=(2, 1), dilation=(1, 2), padding="VALID", h=9, w=9),
    "dwconv-mult2-relu6": lambda: conv_model(dtype="float32", depthwise=True, mult=2, act="RELU6"),
    "fc-batch2": lambda: fc_model(dtype="float32", batch=2, act="RELU"),
    "fc-no-bias": lambda: fc_model(dtype="float32", bias=False),
    "avgpool-same": lambda: pool_model(dtype="float32", k=(3, 3), padding="SAME"),
    "maxpool-valid": lambda: pool_model(dtype="float32", kind="MAX_POOL_2D"),
    "add-broadcast": lambda: add_model(dtype="float32", b_shape=(1, 1, 5, 1), act="RELU"),
    "softmax-rows": lambda: softmax_model(dtype="float32", shape=(2, 11), beta=0.7),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(FLOAT_CASES))
def test_float32_within_1e5_of_litert(case, tmp_path):
    assert_close_to_litert(FLOAT_CASES[case](), tmp_path)


# ----- the requantization shortcut and the portable path ----------------------------------

RIGHT_SHIFT_HARNESS = r"""
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#define EK_SINGLE_ROUNDING 0
#include "ek_common.h"
int main(void) {
  int32_t x, m, s;
  long bad = 0, n = 0;
  while (scanf("%d %d %d", &x, &m, &s) == 3) {
    n++;
    if (ek_mbqm_right(x, m, s) != ek_rdbpot(ek_srdhm(x, m), -s)) {
      if (bad++ < 5) printf("x=%d m=%d shift=%d\n", x, m, s);
    }
  }
  printf("%ld of %ld differ\n", bad, n);
  return bad != 0;
}
"""


def test_right_shift_requantization_equals_the_double_rounding(tmp_path):
    """ek_mbqm_right (the Cortex-M form: one 64-bit sum, its high word shifted) equals
    SaturatingRoundingDoublingHighMul then RoundingDivideByPOT on rounding ties, extremes
    and random values, for every right shift 1..31 and multipliers QuantizeMultiplier makes."""
    import subprocess


    exe = kernel_harness(RIGHT_SHIFT_HARNESS, tmp_path)
    rng = np.random.default_rng(5)
    rows = []
    mults = [0, 1 << 30, (1 << 30) + 1, (1 << 31) - 1, *rng.integers(1 << 30, 1 << 31, size=6).tolist()]
    for shift in range(-31, 0):
        for m in mults:
            e = -shift
            # x near the ties of both roundings: r = x*m/2^31 at half-integers of 2^e
            ties = [((k << (31 + e - 1)) // max(m, 1)) + d for k in range(-5, 6) for d in (-1, 0, 1)]
            xs = ties + [-(2**31), 2**31 - 1, -1, 0, 1] + rng.integers(-(2**31), 2**31, size=20).tolist()
            rows += [f"{max(min(x, 2**31 - 1), -(2**31))} {m} {shift}" for x in xs]
    out = subprocess.run([str(exe)], input="\n".join(rows), capture_output=True, text=True)
    assert out.returncode == 0, out.stdout
    assert out.stdout.strip().endswith(f"0 of {len(rows)} differ")


RQ_HARNESS = r"""
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#define EK_SINGLE_ROUNDING 0
#include "ek_common.h"
int main(void) {
  int32_t x, m, s, offset, stride, p[3];
  long bad = 0, n = 0;
  while (scanf("%d %d %d %d %d %d %d %d", &x, &m, &s, &offset, &stride, &p[0], &p[1], &p[2]) == 8) {
    n++;
    if (ek_rq(2 * x, p, stride) != ek_rdbpot(ek_srdhm(x, m), -s) + offset) {
      if (bad++ < 5) printf("x=%d m=%d shift=%d offset=%d\n", x, m, s, offset);
    }
  }
  printf("%ld of %ld differ\n", bad, n);
  return bad != 0;
}
"""


def test_rq_requantization_equals_the_double_rounding(tmp_path):
    """ek_rq (the DSP path's SMMLAR form, here its C definition; the emulator tests run the
    instruction) with the parameters requant_params computes, with e stored (`--optimize speed`)
    or recovered from the rounding term (the others), equals SaturatingRoundingDoublingHighMul,
    RoundingDivideByPOT and the output offset, on rounding ties and extremes of accumulators
    below 2^30, for every right shift it accepts."""
    import subprocess

    from edgekit.aot.ops.base import EmitContext
    from edgekit.aot.ops.conv import RQ_ACC_LIMIT, requant_params

    exe = kernel_harness(RQ_HARNESS, tmp_path)
    contexts = [EmitContext(graph=None, pointers={}, single_rounding=False, features=frozenset({"dsp"}), optimize=o)
                for o in ("speed", "balanced")]  # fmt: skip
    ctx = contexts[1]
    rng = np.random.default_rng(7)
    rows, covered = [], set()
    mults = [1 << 30, (1 << 30) + 1, (1 << 31) - 1, *rng.integers(1 << 30, 1 << 31, size=5).tolist()]
    for shift in range(-30, 0):
        for m in mults:
            for offset, c in ((o, c) for o in (-128, -5, 0, 127) for c in contexts):
                params = requant_params(c, [m], [shift], offset, RQ_ACC_LIMIT - 1)
                if params is None:
                    continue
                covered.add(shift)
                stride = len(params)
                params = [*params.tolist(), 0, 0][:3]
                e = -shift
                ties = [((k << (31 + e - 1)) // m) + d for k in range(-5, 6) for d in (-1, 0, 1)]
                xs = ties + [-(RQ_ACC_LIMIT - 1), RQ_ACC_LIMIT - 1, -1, 0, 1]
                xs += rng.integers(-RQ_ACC_LIMIT + 1, RQ_ACC_LIMIT, size=10).tolist()
                p = " ".join(str(int(v)) for v in params)
                rows += [f"{x} {m} {shift} {offset} {stride} {p}" for x in xs if abs(x) < RQ_ACC_LIMIT]
    assert set(range(-21, 0)) <= covered  # every shift a real layer has takes the fast path
    out = subprocess.run([str(exe)], input="\n".join(rows), capture_output=True, text=True)
    assert out.returncode == 0, out.stdout
    assert out.stdout.strip().endswith(f"0 of {len(rows)} differ")
    assert requant_params(ctx, [1 << 30], [0], 0, 100) is None  # a shift of 0 keeps the general path
    assert requant_params(ctx, [1 << 30], [-3], 0, RQ_ACC_LIMIT) is None  # 2 * acc could overflow


def _exact_with_cflags(tmp_path, cases: list[tuple[str, dict]], cflags: tuple[str, ...], layout=None) -> None:
    """Each conv case built with `cflags` equals TFLM on 4 random inputs; `layout(case, kw, source)`
    checks the bundle's C source first."""
    from edgekit.aot.compiler import compile_model
    from edgekit.aot.hostbuild import load_bundle
    from tests.test_aot_builder import random_int8, tflm_outputs

    for k, (case, kw) in enumerate(cases):
        model = conv_model(**kw, seed=len(case))
        bundle = compile_model(model, name="m")
        bundle.write(tmp_path / str(k))
        if layout:
            layout(case, kw, (tmp_path / str(k) / "m.c").read_text())
        host = load_bundle(bundle, tmp_path / str(k), cflags)
        rng = np.random.default_rng(k)
        feeds = [[random_int8(rng, bundle.inputs[0].shape)] for _ in range(4)]
        for feed, ref in zip(feeds, tflm_outputs(model, feeds)):
            assert np.array_equal(host.run(*feed)[0].reshape(ref.shape), ref), case


#: the x86 AVX2 path (kernels/ek_x86.h) whatever else the host has: no AVX-512, so no VNNI lanes path
AVX2_CFLAGS = ("-std=c99", "-O3", "-mavx2", "-mfma", "-mno-avx512f", "-fPIC", "-shared", "-Wall", "-Wextra", "-Werror")
AVX2_EXTRA_CASES = {
    # 40 channels: two 16-channel requantization steps and a scalar tail; 1x1 read from the input
    "1x1-40-channels": dict(k=(1, 1), c=20, oc=40, h=5, w=7),
    "3x3-40-channels-stride2": dict(c=12, oc=40, stride=(2, 2), h=9, w=9, act="RELU"),
    "3x3-in-the-arena": dict(c=16, oc=16, inner=True),
    # 4,680 taps: longer than the AVX2 path's window buffer (X86_CONV_DEPTH), so the portable path
    "window-beyond-the-avx2-buffer": dict(c=520, oc=5, h=3, w=3),
    # depthwise takes the AVX2 path with 16 channels per step
    "dw-3x3-32-channels-saturating": dict(depthwise=True, c=32, saturate=True, in_zp=127, out_zp=-128),
    "dw-5x5-stride2-relu": dict(depthwise=True, c=16, k=(5, 5), stride=(2, 2), act="RELU", h=9, w=9),
    "dw-3x1-dilation2-batch2-in-the-arena": dict(depthwise=True, c=16, k=(3, 1), dilation=(2, 1), n=2, inner=True),
    "dw-gain-above-one": dict(depthwise=True, c=16, out_scale=2e-5, in_zp=0, out_zp=0),
}


def test_portable_path_matches_tflm_without_simd(tmp_path):
    """Bundles built without -march=native (no VNNI lanes, no AVX2) stay exact: the padded-row layout."""
    portable = ("-std=c99", "-O2", "-fPIC", "-shared", "-Wall", "-Wextra", "-Werror")
    cases = [(c, CONV_CASES[c]) for c in ("1x1-pointwise", "odd-channels-5x5", "stride2-same-relu")]
    cases += [(c, AVX2_EXTRA_CASES[c]) for c in ("window-beyond-the-avx2-buffer", "dw-3x3-32-channels-saturating")]
    _exact_with_cflags(tmp_path, cases, portable)


def _host_has_avx2() -> bool:
    from pathlib import Path

    try:
        return " avx2" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


def _avx2_layout(case: str, kw: dict, source: str) -> None:
    """The filter is laid out for the AVX2 path (else the bundle would take the portable one)."""
    from edgekit.aot.ops.conv import X86_CONV_DEPTH

    if kw.get("depthwise"):
        assert "#if EK_X86_CONV\n" in source, case
    else:
        taps = kw.get("k", (3, 3))[0] * kw.get("k", (3, 3))[1] * kw.get("c", 3)
        assert ("|| EK_X86_CONV\n" in source) == (-(-taps // 4) * 4 <= X86_CONV_DEPTH), case


@pytest.mark.skipif(not _host_has_avx2(), reason="the host CPU has no AVX2")
def test_avx2_path_matches_tflm(tmp_path):
    """Conv and depthwise cases built for AVX2 without AVX-512 stay exact."""
    # on an AVX2 host without VNNI every case above takes this path already; these run it anywhere
    conv = ["kws-like-10x4-stride2", "odd-channels-5x5", "per-tensor-no-bias-batch2", "dilation-stride-mixed-valid"]
    cases = [(c, CONV_CASES[c]) for c in conv] + list(AVX2_EXTRA_CASES.items())
    _exact_with_cflags(tmp_path, cases, AVX2_CFLAGS, _avx2_layout)


MBQM_HARNESS = r"""
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include "ek_common.h"
int main(void) {
  int32_t x, m, s;
  while (scanf("%d %d %d", &x, &m, &s) == 3) printf("%d\n", ek_mbqm_smaller_than_one(x, m, s));
  return 0;
}
"""


@pytest.mark.parametrize("single_rounding", [False, True])
def test_python_add_terms_equal_the_c_requantization(single_rounding, tmp_path):
    """ADD's compile-time tables (DSP targets) use quant.multiply_by_quantized_multiplier_smaller_than_one:
    it must equal the C ek_mbqm_smaller_than_one of either TFLM rounding on the terms ADD feeds it."""
    import subprocess

    from edgekit.aot.quant import multiply_by_quantized_multiplier_smaller_than_one, quantize_multiplier

    exe = kernel_harness(MBQM_HARNESS, tmp_path, f"-DEK_SINGLE_ROUNDING={int(single_rounding)}")
    rng = np.random.default_rng(9)
    cases = []
    for real in [0.5, 0.25, 0.3, *rng.uniform(1e-4, 0.99, size=12).tolist()]:
        m, shift = quantize_multiplier(real, single_rounding)
        cases += [((v - zp) << 20, m, shift) for v in range(-128, 128) for zp in (-128, 0, 17)]
    out = subprocess.run([str(exe)], input="\n".join(f"{x} {m} {s}" for x, m, s in cases),
                         capture_output=True, text=True, check=True)  # fmt: skip
    got = [int(v) for v in out.stdout.split()]
    want = [multiply_by_quantized_multiplier_smaller_than_one(x, m, s, single_rounding) for x, m, s in cases]
    assert got == want
