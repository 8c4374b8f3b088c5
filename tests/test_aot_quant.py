"""Compile-time quantization arithmetic, and which rounding the pip TFLM build uses."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgekit.aot.fixedpoint import exp_on_negative_values
from edgekit.aot.quant import activation_range_int8, quantize_multiplier, tflite_round
from tests.test_aot_builder import ModelBuilder, compile_and_load, tflm_outputs


def test_tflite_round_goes_away_from_zero_on_halves():
    assert [tflite_round(v) for v in (0.5, 1.5, 2.5, -0.5, -2.5, 2.4)] == [1, 2, 3, -1, -3, 2]


@pytest.mark.parametrize(
    "real, expected",
    [
        (0.5, (1 << 30, 0)),  # frexp(0.5) = (0.5, 0)
        (0.25, (1 << 30, -1)),
        (1.0, (1 << 30, 1)),
        (3.0, (3 << 29, 2)),
        (0.0, (0, 0)),
        # a mantissa that rounds up to 2**31 is halved and the shift bumped
        (1.0 - 2.0**-33, (1 << 30, 1)),
        # below 2**-31 everything flushes to zero
        (2.0**-40, (0, 0)),
    ],
)
def test_quantize_multiplier_matches_tflm_rules(real, expected):
    assert quantize_multiplier(real) == expected


def test_quantize_multiplier_represents_the_real_value():
    rng = np.random.default_rng(0)
    for real in rng.uniform(1e-6, 50.0, size=200):
        m, s = quantize_multiplier(real)
        assert (1 << 30) <= m < (1 << 31)
        assert math.isclose(m * 2.0 ** (s - 31), real, rel_tol=2**-30)


def test_single_rounding_saturates_large_shifts():
    assert quantize_multiplier(2.0**40, single_rounding=True) == ((1 << 31) - 1, 30)
    assert quantize_multiplier(2.0**40)[1] == 41


def test_activation_ranges():
    assert activation_range_int8("NONE", 0.1, 3) == (-128, 127)
    assert activation_range_int8("RELU", 0.1, -20) == (-20, 127)
    assert activation_range_int8("RELU6", 0.05, -128) == (-128, -8)  # 6 / 0.05 = 120
    assert activation_range_int8("RELU6", 0.01, 0) == (0, 127)  # 600 clips to 127


def test_exp_table_approximates_exp():
    # FixedPoint<5> input, F0 output: exp(-x) within a few ulps of 2**-31
    for x in (0.0, 0.1, 0.5, 1.0, 3.0, 7.5, 15.9):
        raw = -round(x * 2**26)
        got = exp_on_negative_values(raw, 5) / 2**31
        assert abs(got - math.exp(-x)) < 1e-6


def _tie_model() -> bytes:
    """y = x / 4 exactly (multiplier 2**30, shift -1): odd multiples of 2 land on .5 ties."""
    b = ModelBuilder()
    x = b.tensor((1, 1), scale=1.0, zero_point=0)
    w = b.tensor((1, 1), data=np.array([[1]]), scale=1.0)
    y = b.tensor((1, 1), scale=4.0, zero_point=0)
    b.op("FULLY_CONNECTED", [x, w, -1], [y])
    return b.build([x], [y])


def test_pip_tflm_uses_double_rounding(tmp_path):
    """Checked empirically: on negative ties the two MultiplyByQuantizedMultiplier builds differ.

    -2/4 = -0.5: single rounding gives 0 (half up), gemmlowp's double rounding -1 (half away
    from zero). The compiler's default must agree with the interpreter on every tie.
    """
    from edgekit.aot.compiler import TFLM_SINGLE_ROUNDING

    model = _tie_model()
    values = np.arange(-128, 128, dtype=np.int8)
    expected = np.array([o.item() for o in tflm_outputs(model, [[np.array([[v]], np.int8)] for v in values])])
    _, double = compile_and_load(model, tmp_path, name="double", single_rounding=False)
    _, single = compile_and_load(model, tmp_path, name="single", single_rounding=True)
    got_double = np.array([double.run(np.array([[v]], np.int8))[0].item() for v in values])
    got_single = np.array([single.run(np.array([[v]], np.int8))[0].item() for v in values])
    assert np.array_equal(got_double, expected)
    assert not np.array_equal(got_single, expected)
    assert expected[values == -2].item() == -1
    assert TFLM_SINGLE_ROUNDING is False
