"""A seeded random sweep of window operators against TFLM: shapes, strides, dilations, paddings,
channel multipliers, zero points and scales drawn together, so combinations no hand-picked
case names still meet the reference kernels."""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.aot.ops.conv import compute_out_size
from tests.test_aot_builder import assert_bit_exact_with_tflm
from tests.test_aot_ops import conv_model, pool_model

ACTIVATIONS = ("NONE", "RELU", "RELU6", "RELU_N1_TO_1")


def _window(rng, h, w):
    while True:
        k = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
        stride = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        dilation = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        padding = str(rng.choice(["SAME", "VALID"]))
        if all(compute_out_size(padding, n, kk, s, d) > 0 for n, kk, s, d in zip((h, w), k, stride, dilation)):
            return k, stride, dilation, padding


def conv_case(seed: int, depthwise: bool) -> bytes:
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(1, 12)), int(rng.integers(1, 12))
    k, stride, dilation, padding = _window(rng, h, w)
    in_scale_w = 0.02 * 0.01 * np.sqrt(k[0] * k[1] * 4) * 40
    return conv_model(
        n=int(rng.integers(1, 3)), h=h, w=w, c=int(rng.integers(1, 10)), oc=int(rng.integers(1, 12)),
        k=k, stride=stride, dilation=dilation, padding=padding,
        act=str(rng.choice(ACTIVATIONS)), depthwise=depthwise, mult=int(rng.integers(1, 4)),
        in_zp=int(rng.integers(-128, 128)), out_zp=int(rng.integers(-128, 128)),
        # (edgekit's reader requires DEPTHWISE_CONV_2D's bias)
        per_channel=bool(rng.integers(0, 2)), bias=depthwise or bool(rng.integers(0, 2)),
        out_scale=float(in_scale_w * 10 ** rng.uniform(-3, 1)), seed=seed,
    )  # fmt: skip


def pool_case(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(1, 12)), int(rng.integers(1, 12))
    while True:
        k = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
        stride = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        padding = str(rng.choice(["SAME", "VALID"]))
        if all(compute_out_size(padding, n, kk, s, 1) > 0 for n, kk, s in zip((h, w), k, stride)):
            break
    return pool_model(
        kind=str(rng.choice(["AVERAGE_POOL_2D", "MAX_POOL_2D"])), h=h, w=w, c=int(rng.integers(1, 9)),
        k=k, stride=stride, padding=padding, act=str(rng.choice(ACTIVATIONS)),
        zp=int(rng.integers(-128, 128)),
    )  # fmt: skip


@pytest.mark.parametrize("seed", range(24))
def test_random_conv2d_matches_tflm(seed, tmp_path):
    assert_bit_exact_with_tflm(conv_case(1000 + seed, depthwise=False), tmp_path, count=8, seed=seed)


@pytest.mark.parametrize("seed", range(24))
def test_random_depthwise_conv2d_matches_tflm(seed, tmp_path):
    assert_bit_exact_with_tflm(conv_case(2000 + seed, depthwise=True), tmp_path, count=8, seed=seed)


@pytest.mark.parametrize("seed", range(16))
def test_random_pool_matches_tflm(seed, tmp_path):
    assert_bit_exact_with_tflm(pool_case(3000 + seed), tmp_path, count=8, seed=seed)
