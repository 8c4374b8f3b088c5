"""`--optimize size` on the Cortex-M DSP path: the compact kernels are bit-exact with TFLM.

The convolutions, depthwise convolutions and small fully connected layers run
kernels/ek_compact.h from the model's own filters, the raw bias and one packed
requantization word per channel (edgekit/aot/channel_params.py); SOFTMAX
computes exp where it is used instead of reading a table. The shape sweep runs
on the host (a `dsp` bundle built there takes the portable C of each kernel);
one firmware runs the SMLAD path of every kernel on the emulated Cortex-M4.
"""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from edgekit.aot.channel_params import pack_words, packable, unpack_words
from edgekit.aot.ops.conv import compute_out_size
from edgekit.aot.ops.softmax import softmax_exp_table, softmax_scaling
from tests.test_aot_builder import (
    ModelBuilder,
    assert_bit_exact_on_emulated_cortex_m4,
    assert_bit_exact_with_tflm,
    kernel_harness,
    needs_emulator,
)
from tests.test_aot_ops import CONV_CASES, DW_CASES, FC_CASES, SOFTMAX_CASES, conv_model, fc_model, softmax_model

SIZE = dict(features=frozenset({"dsp"}), optimize="size")


def _operators(tmp_path) -> str:
    return (tmp_path / "m" / "m.c").read_text().split("/* ---- operators ---- */")[1]


# ---- the packed words -----------------------------------------------------------------------


def test_packed_words_give_back_every_multiplier_and_shift():
    rng = np.random.default_rng(3)
    for base in (-31, -9, 0, 5):
        mults = np.concatenate([[2**30, 2**31 - 1], rng.integers(2**30, 2**31, size=200)])
        shifts = base + np.concatenate([[0, 3], rng.integers(0, 4, size=200)])
        assert packable(mults, shifts)
        words, got_base = pack_words(mults, shifts)
        assert words.dtype == np.uint32 and got_base == base
        back_m, back_s = unpack_words(words, got_base)
        np.testing.assert_array_equal(back_m, mults)
        np.testing.assert_array_equal(back_s, shifts)
    assert not packable([2**30] * 2, [-9, -4])  # five shifts apart
    assert not packable([0, 2**30], [0, -8])  # a zero multiplier (a zero scale)


# ---- exp computed against the table -----------------------------------------------------------

EXP_HARNESS = r"""
#include <stdio.h>
#include <stdint.h>
#include <string.h>
#include <math.h>
#include "ek_common.h"
#include "ek_softmax.h"
int main(void) {
  int32_t multiplier;
  int left_shift, span, diff;
  while (scanf("%d %d %d", &multiplier, &left_shift, &span) == 3) {
    for (diff = -255; diff <= 0; ++diff)
      printf("%d ", ek_softmax_exp((const int32_t *)0, span, multiplier, left_shift, diff));
    printf("\n");
  }
  return 0;
}
"""

#: (beta, input scale): KWS's, the sweep's, tiny and large scales (diff_min near 0 and below -255)
EXP_SCALES = [(1.0, 0.14469251), (1.0, 0.0625), (1.0, 0.004), (2.5, 0.5), (1.0, 0.02), (0.7, 1.3),
              (1.0, 3e-4), (1.0, 8.0)]  # fmt: skip


@pytest.mark.parametrize("single_rounding", [False, True])
def test_computed_exp_equals_the_table_for_every_difference(single_rounding, tmp_path):
    """ek_softmax_exp without a table (`size`) gives, for each int8 difference -255..0, the value
    the compiler tabulates with gemmlowp's arithmetic in Python (0 below diff_min)."""
    exe = kernel_harness(EXP_HARNESS, tmp_path, f"-DEK_SINGLE_ROUNDING={int(single_rounding)}")
    rows, expected = [], []
    for beta, scale in EXP_SCALES:
        multiplier, left_shift, diff_min = softmax_scaling(beta, scale, single_rounding)
        rows.append(f"{multiplier} {left_shift} {-max(diff_min, -255)}")
        table = softmax_exp_table(beta, scale, single_rounding)
        expected.append(np.concatenate([np.zeros(256 - len(table), np.int64), table]))
    out = subprocess.run([str(exe)], input="\n".join(rows), capture_output=True, text=True, check=True).stdout
    got = [np.array(line.split(), dtype=np.int64) for line in out.strip().splitlines()]
    assert len(got) == len(EXP_SCALES)
    for (beta, scale), g, e in zip(EXP_SCALES, got, expected):
        np.testing.assert_array_equal(g, e, err_msg=f"beta {beta} scale {scale}")
        assert np.count_nonzero(e) > 0


@pytest.mark.parametrize("case", sorted(SOFTMAX_CASES))
def test_softmax_at_size_computes_exp_and_matches_tflm(case, tmp_path):
    assert_bit_exact_with_tflm(softmax_model(**SOFTMAX_CASES[case]), tmp_path, count=20, **SIZE)
    source = (tmp_path / "m" / "m.c").read_text()
    assert "_exp[" not in source and "ek_softmax_s8(" in _operators(tmp_path)


# ---- the compact kernels on the host --------------------------------------------------------

#: beyond the operator sweeps (whose filter scales lie 10x apart, which may or may not pack): a
#: bias beyond int16 (an int32 array), filter scales 250x apart (shifts that do not fit the
#: word: multipliers and int8 shifts), a 1x1 convolution with as many outputs as inputs
#: (written over its input)
EXTRA = {
    "conv-int32-bias": dict(bias_limit=60_000, c=4, oc=6, w_scales=(0.01, 0.012)),
    "conv-shifts-apart": dict(w_scales=(0.0002, 0.05), oc=12),
    "conv-1x1-in-place": dict(k=(1, 1), c=16, oc=16, w_scales=(0.01, 0.012)),
    "dw-int32-bias-shifts-apart": dict(depthwise=True, c=8, bias_limit=60_000, w_scales=(0.0002, 0.05)),
}
SWEEP = {
    **{f"conv-{k}": v for k, v in CONV_CASES.items()},
    **{f"dw-{k}": dict(v, depthwise=True) for k, v in DW_CASES.items()},
    **EXTRA,
}


@pytest.mark.parametrize("case", sorted(SWEEP))
def test_compact_convolution_matches_tflm(case, tmp_path):
    """Between two QUANTIZE ops, so the planner may write the output over the input."""
    kw = SWEEP[case]
    bundle = assert_bit_exact_with_tflm(conv_model(**kw, seed=len(case), inner=True), tmp_path, count=4, **SIZE)
    fn = "ek_depthwise_compact_s8(" if kw.get("depthwise") else "ek_conv_compact_s8("
    ops = _operators(tmp_path)
    assert fn in ops and "ek_conv_s8(" not in ops and "ek_depthwise_conv_s8(" not in ops
    if case == "conv-1x1-in-place":  # the window copied first: each output pixel over its input pixel
        ((out, inp), lag), = bundle.plan.overwrites.items()
        assert lag == 0 and bundle.plan.offsets[out] == bundle.plan.offsets[inp]
    source = (tmp_path / "m" / "m.c").read_text()
    constants = [line for line in source.splitlines() if line.startswith("static const")]
    biases = [line for line in constants if "_bias[" in line]
    assert biases and all(("int32_t" if "int32-bias" in case else "int16_t") in line for line in biases)
    if case in EXTRA:  # filter scales within 20% of each other pack their shifts into the words
        assert any("_shifts[" in line for line in constants) == ("shifts-apart" in case)


def test_every_target_but_helium_takes_the_compact_kernels_at_size(tmp_path):
    """They read the model's arrays as they are, so a target without DSP (and a host) takes them
    too; a Helium target keeps its own kernels, whose weights are int8 already."""
    from edgekit.aot.compiler import compile_model

    model = conv_model(**CONV_CASES["3x3-same"], seed=1)
    assert_bit_exact_with_tflm(model, tmp_path, count=4, features=frozenset(), optimize="size")
    assert "ek_conv_compact_s8(" in _operators(tmp_path)
    helium = compile_model(model, features={"dsp", "mve"}, optimize="size").source
    assert "ek_conv_compact_s8(" not in helium.split("/* ---- operators ---- */")[1]


#: the fully connected cases the grouped kernel (ek_fc_dsp.h) does not take at `size`
FC_COMPACT = {k: v for k, v in FC_CASES.items() if v.get("depth", 20) * v.get("units", 7) < 1024}


@pytest.mark.parametrize("case", sorted(FC_COMPACT))
def test_small_fully_connected_runs_as_a_compact_1x1_convolution(case, tmp_path):
    assert_bit_exact_with_tflm(fc_model(**FC_COMPACT[case], seed=len(case)), tmp_path, count=6, **SIZE)
    assert "ek_conv_compact_s8(" in _operators(tmp_path)


# ---- the SMLAD path on the emulated Cortex-M4 -----------------------------------------------


def _branches_model(seed: int = 7) -> bytes:
    """One firmware's worth of compact layers, one chain per input: a 10x4 stride-2 convolution of
    one channel (scalar tails), a 3x3 convolution of 6 channels into a 1x1 of 16 written over its
    input, a depthwise of multiplier 2 with stride 2 and one of shifts 250x apart, and a small
    fully connected layer into SOFTMAX."""
    rng = np.random.default_rng(seed)
    b = ModelBuilder()
    inputs, outputs = [], []

    def conv(cur, shape, zp, scale, oc, k, stride=(1, 1), depthwise=False, mult=1, w_scales=(0.002, 0.02)):
        n, h, w, c = shape
        out_c = c * mult if depthwise else oc
        oh = compute_out_size("SAME", h, k[0], stride[0], 1)
        ow = compute_out_size("SAME", w, k[1], stride[1], 1)
        fshape = (1, *k, out_c) if depthwise else (out_c, *k, c)
        w_scale = rng.uniform(*w_scales, size=out_c)
        f = b.tensor(fshape, data=rng.integers(-127, 128, size=fshape), scale=w_scale, zero_point=0,
                     axis=3 if depthwise else 0)  # fmt: skip
        bias = b.tensor((out_c,), "int32", data=rng.integers(-40_000, 40_000, size=out_c), scale=scale * w_scale)
        out_scale = float(scale * np.mean(w_scale) * np.sqrt(k[0] * k[1] * (1 if depthwise else c)) * 40)
        out_zp = int(rng.integers(-20, 20))
        y = b.tensor((n, oh, ow, out_c), scale=out_scale, zero_point=out_zp)
        opts = dict(padding="SAME", stride_h=stride[0], stride_w=stride[1], fused_activation_function="RELU")
        if depthwise:
            b.op("DEPTHWISE_CONV_2D", [cur, f, bias], [y], depth_multiplier=mult, **opts)
        else:
            b.op("CONV_2D", [cur, f, bias], [y], **opts)
        return y, (n, oh, ow, out_c), out_zp, out_scale

    chains = [
        ((1, 13, 10, 1), [dict(oc=8, k=(10, 4), stride=(2, 2))]),
        ((1, 7, 6, 6), [dict(oc=16, k=(3, 3)), dict(oc=16, k=(1, 1))]),
        ((1, 9, 8, 3), [dict(oc=0, k=(3, 3), stride=(2, 2), depthwise=True, mult=2),
                        dict(oc=0, k=(3, 3), depthwise=True, w_scales=(0.0002, 0.05))]),
    ]  # fmt: skip
    for shape, layers in chains:
        scale, zp = 0.02, int(rng.integers(-20, 20))
        x = b.tensor(shape, scale=scale, zero_point=zp)
        cur = b.tensor(shape, scale=scale, zero_point=zp)
        b.op("QUANTIZE", [x], [cur])
        for layer in layers:
            cur, shape, zp, scale = conv(cur, shape, zp, scale, **layer)
        out = b.tensor(shape, scale=scale, zero_point=zp)
        b.op("QUANTIZE", [cur], [out])
        inputs.append(x)
        outputs.append(out)
    # fully connected (12 x 40, per tensor) into SOFTMAX
    x = b.tensor((1, 40), scale=0.03, zero_point=-7)
    w = b.tensor((12, 40), data=rng.integers(-127, 128, size=(12, 40)), scale=np.array([0.01]), zero_point=0)
    bias = b.tensor((12,), "int32", data=rng.integers(-5000, 5000, size=12), scale=np.array([0.0003]))
    logits = b.tensor((1, 12), scale=0.15, zero_point=3)
    b.op("FULLY_CONNECTED", [x, w, bias], [logits], fused_activation_function="NONE")
    probs = b.tensor((1, 12), scale=1.0 / 256, zero_point=-128)
    b.op("SOFTMAX", [logits], [probs], beta=1.0)
    inputs.append(x)
    outputs.append(probs)
    return b.build(inputs, outputs)


@pytest.mark.slow
@needs_emulator
def test_compact_kernels_on_emulated_cortex_m4_match_tflm(tmp_path):
    model = tmp_path / "compact.tflite"
    model.write_bytes(_branches_model())
    assert_bit_exact_on_emulated_cortex_m4(model, "size", count=3, seed=9)
