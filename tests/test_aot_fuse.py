"""A convolution fused with the ADD that consumes it (edgekit/aot/fuse.py, kernels/ek_conv_taps.h):
bit-exact with TFLM, written over the residual it adds, smaller arenas than the unfused pair."""

from __future__ import annotations

import re

import numpy as np
import pytest

from edgekit.aot.compiler import compile_model
from tests.test_aot_builder import ModelBuilder, assert_bit_exact_with_tflm
from tests.test_aot_planner import _written_over, assert_valid

DSP = frozenset({"dsp"})


def residual_block(*, n=1, h=8, w=8, c=16, residual_first=False, act="RELU", per_channel=True,
                   dilation=1, in_zp=-7, shortcut=False, seed=0) -> bytes:  # fmt: skip
    """A ResNet block between two QUANTIZE ops (so every tensor is in the arena):
    x -> conv 3x3 (RELU) -> conv 3x3 -> ADD with x (`act`) -> out. With `shortcut`, as
    ResNet-8's downsampling blocks: the first conv has stride 2 and twice the channels, and
    x reaches the ADD through a 1x1 stride-2 conv computed after the 3x3 ones (the one
    that fuses, the second 3x3 conv's output being its residual)."""
    rng = np.random.default_rng(seed)
    b = ModelBuilder()
    shape = (n, h, w, c)
    c_out, stride = (2 * c, 2) if shortcut else (c, 1)
    out_shape = (n, -(-h // stride), -(-w // stride), c_out)
    scale = 0.05

    def conv(src, c_in, k=3, stride=1, relu=False):
        w_scale = rng.uniform(0.002, 0.01, size=c_out) if per_channel else np.array([0.006])
        fshape = (c_out, k, k, c_in)
        f = b.tensor(fshape, data=rng.integers(-127, 128, size=fshape), scale=w_scale, zero_point=0)
        bias = b.tensor((c_out,), "int32", data=rng.integers(-4000, 4000, size=c_out), scale=scale * w_scale)
        out = b.tensor(out_shape, scale=float(rng.uniform(0.04, 0.08)), zero_point=int(rng.integers(-20, 20)))
        b.op("CONV_2D", [src, f, bias], [out], padding="SAME", stride_h=stride, stride_w=stride,
             dilation_h_factor=dilation, dilation_w_factor=dilation,
             fused_activation_function="RELU" if relu else "NONE")  # fmt: skip
        return out

    model_in = b.tensor(shape, scale=scale, zero_point=in_zp)
    x = b.tensor(shape, scale=scale, zero_point=in_zp)
    b.op("QUANTIZE", [model_in], [x])
    y2 = conv(conv(x, c, stride=stride, relu=True), c_out)
    skip = conv(x, c, k=1, stride=stride) if shortcut else x
    s = b.tensor(out_shape, scale=0.07, zero_point=-3)
    b.op("ADD", [skip, y2] if residual_first else [y2, skip], [s], fused_activation_function=act)
    out = b.tensor(out_shape, scale=0.07, zero_point=-3)
    b.op("QUANTIZE", [s], [out])
    return b.build([model_in], [out])


def fused_calls(bundle) -> int:
    """ek_conv_taps_s8 calls that take a residual (the unfused ones pass a null pointer)."""
    calls = re.findall(r"ek_conv_taps_s8\(([^;]*)\);", bundle.source)
    return sum("(const int8_t *)0" not in call for call in calls)


CASES = {
    "8x8x16": dict(),
    "odd-pixels-residual-first": dict(h=7, w=5, residual_first=True, act="NONE", in_zp=12),
    "batch2-per-tensor-relu6": dict(n=2, h=4, w=6, per_channel=False, act="RELU6"),
    "32-channels-dilation2": dict(c=32, h=6, w=6, dilation=2),
    "downsampling-1x1-shortcut": dict(h=9, w=7, shortcut=True),
}


@pytest.mark.parametrize("optimize", ["balanced", "speed"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_fused_residual_block_is_bit_exact_with_tflm_and_written_over_its_input(case, optimize, tmp_path):
    """On a DSP target (the portable C of the same bundle runs on this host)."""
    model = residual_block(**CASES[case], seed=len(case))
    bundle = assert_bit_exact_with_tflm(model, tmp_path, count=6, features=DSP, optimize=optimize)
    assert fused_calls(bundle) == 1 and "ek_add_s8(" not in bundle.source.split("_run_io(")[-1]
    assert_valid(bundle.plan)
    assert _written_over(bundle)
    unfused = compile_model(model, features=DSP, optimize=optimize, debug=True)
    assert fused_calls(unfused) == 0 and "ek_add_s8(" in unfused.source
    if CASES[case].get("shortcut"):  # the peak is the strided conv's, before any ADD
        assert bundle.arena_bytes <= unfused.arena_bytes
    else:  # the block's input, the first conv's output and the second's scratch are all it needs
        assert bundle.arena_bytes < unfused.arena_bytes
    assert bundle.ops == unfused.ops  # the model's operators, as reports list them


def test_no_fusion_where_the_kernel_or_the_graph_does_not_allow_it(tmp_path):
    model = residual_block(seed=3)
    # hosts and --optimize size keep the window kernel, which is not fused
    for options in (dict(features=frozenset()), dict(features=DSP, optimize="size")):
        bundle = compile_model(model, **options)
        assert fused_calls(bundle) == 0 and "ek_add_s8(" in bundle.source
    # a convolution whose output is read by more than its ADD stays unfused
    b = ModelBuilder()
    shape = (1, 4, 4, 8)
    x = b.tensor(shape, scale=0.05, zero_point=0)
    f = b.tensor((8, 3, 3, 8), data=np.ones((8, 3, 3, 8)), scale=np.full(8, 0.01), zero_point=0)
    y = b.tensor(shape, scale=0.1, zero_point=0)
    s = b.tensor(shape, scale=0.1, zero_point=0)
    m = b.tensor(shape, scale=0.1, zero_point=0)
    b.op("CONV_2D", [x, f, -1], [y], padding="SAME", stride_h=1, stride_w=1)
    b.op("ADD", [y, x], [s])
    b.op("MUL", [s, y], [m])
    model = b.build([x], [m])
    bundle = assert_bit_exact_with_tflm(model, tmp_path, count=3, features=DSP)
    assert "ek_conv_taps_s8(" in bundle.source and fused_calls(bundle) == 0


#: convolutions the tap-by-tap kernel takes (in_c % 8 == 0, out_c % 4 == 0), of every geometry
TAPS_CASES = {
    "3x3-same-16": dict(c=16, oc=16, h=6, w=5),
    "1x1-stride2": dict(c=16, oc=8, k=(1, 1), stride=(2, 2), h=7, w=7),
    "stride2-valid-relu": dict(c=8, oc=12, stride=(2, 2), padding="VALID", act="RELU", h=9, w=8),
    "dilation-stride-mixed": dict(c=16, oc=4, dilation=(1, 2), stride=(2, 1), h=10, w=10),
    "5x5-batch2-per-tensor": dict(c=8, oc=8, k=(5, 5), n=2, per_channel=False, bias=False, h=6, w=6),
    "wide-kernel-relu6": dict(c=8, oc=4, k=(2, 4), stride=(1, 3), h=5, w=11, act="RELU6"),
    "saturating-neg-zero-points": dict(c=16, oc=8, saturate=True, in_zp=-128, out_zp=-60),
    "gain-above-one": dict(c=8, oc=8, out_scale=1e-4, in_zp=0, out_zp=0),
    "1x1-24-channels": dict(c=24, oc=12, k=(1, 1), h=5, w=7),
}


@pytest.mark.parametrize("case", sorted(TAPS_CASES))
def test_tap_by_tap_convolution_is_bit_exact_with_tflm(case, tmp_path):
    """The DSP bundle's convolution, on this host its portable C (the assembly runs in
    tests/test_aot_qemu.py), written over its input where the plan allows."""
    from tests.test_aot_ops import conv_model

    model = conv_model(**TAPS_CASES[case], seed=len(case), inner=True)
    bundle = assert_bit_exact_with_tflm(model, tmp_path, count=4, features=DSP)
    assert "ek_conv_taps_s8(" in bundle.source
    assert_valid(bundle.plan)


def test_a_convolution_added_to_its_own_input_is_fused_and_bit_exact(tmp_path):
    """out = ADD(CONV_2D(x), x): the output may lie over x only at the window's lag, the larger
    of its two lags (windows read x ahead of the element-by-element residual)."""
    rng = np.random.default_rng(5)
    b = ModelBuilder()
    shape = (1, 6, 7, 16)
    model_in = b.tensor(shape, scale=0.05, zero_point=4)
    x = b.tensor(shape, scale=0.05, zero_point=4)
    f = b.tensor((16, 3, 3, 16), data=rng.integers(-127, 128, size=(16, 3, 3, 16)),
                 scale=rng.uniform(0.002, 0.01, size=16), zero_point=0)  # fmt: skip
    y = b.tensor(shape, scale=0.06, zero_point=-2)
    s = b.tensor(shape, scale=0.08, zero_point=1)
    out = b.tensor(shape, scale=0.08, zero_point=1)
    b.op("QUANTIZE", [model_in], [x])
    b.op("CONV_2D", [x, f, -1], [y], padding="SAME", stride_h=1, stride_w=1)
    b.op("ADD", [y, x], [s], fused_activation_function="RELU")
    b.op("QUANTIZE", [s], [out])
    bundle = assert_bit_exact_with_tflm(b.build([model_in], [out]), tmp_path, count=4, features=DSP)
    assert fused_calls(bundle) == 1
    assert_valid(bundle.plan)
    lags = bundle.plan.overwrites  # (the QUANTIZEs' other ends are the caller's buffers)
    assert lags and all(lag >= 7 * 16 + 16 for lag in lags.values())  # a row and a pixel


def test_a_fused_operator_is_titled_as_the_pair_and_profiled_under_that_name():
    """Fusion leaves fewer operator functions than model nodes: each function's title gives its
    node and `CONV_2D+ADD`, and bench/aot_op_profile.py labels its counts from the titles."""
    import importlib.util
    from pathlib import Path

    bundle = compile_model(residual_block(), features=DSP)
    spec = importlib.util.spec_from_file_location(
        "aot_op_profile", Path(__file__).resolve().parents[1] / "bench" / "aot_op_profile.py"
    )
    profiler = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(profiler)
    _, labels = profiler.instrumented(bundle.source)
    opcodes = [label.split()[1] for label in labels]
    assert len(labels) == len(bundle.ops) - fused_calls(bundle) == len(set(labels))
    assert opcodes.count("CONV_2D+ADD") == fused_calls(bundle) == 1 and "ADD" not in opcodes
    # every label names a node of the model with its own opcode (or the fused pair's)
    for label in labels:
        node, opcode = label.split()
        assert bundle.ops[int(node)] == opcode.split("+")[0]
