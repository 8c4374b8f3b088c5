"""Matching and metrics on hand-made captures: no runtime needed."""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.debug.capture import Capture, Captured
from edgekit.debug.causes import range_check
from edgekit.debug.match import match, name_parts
from edgekit.debug.metrics import Tolerance, errors, fails, growth


def tensor(name, position, values, op="OP", **quant):
    return Captured(name, position, op, np.asarray(values), **quant)


def test_name_parts_split_fused_names_and_drop_output_suffixes():
    assert name_parts("m/act/Relu;m/conv2d_1/BiasAdd:0") == ["m", "act", "Relu", "m", "conv2d_1", "BiasAdd"]


def test_fused_tensor_matches_the_last_layer_it_names_and_io_pair_by_position():
    x = np.ones((2, 1, 4))
    reference = Capture(
        "keras",
        [tensor("input_0", -1, x), tensor("conv", 0, x), tensor("act", 1, x), tensor("dense", 2, x), tensor("out", 3, x)],
        inputs=["input_0"],
        outputs=["out"],
    )
    converted = Capture(
        "litert",
        [
            tensor("serving_default_x:0", -1, x),
            tensor("m/act/Relu;m/conv/BiasAdd", 0, x),
            tensor("m/dense/MatMul", 1, x),
            tensor("weights_only", 2, np.ones((2, 1, 3))),
            tensor("StatefulPartitionedCall:0", 3, x),
        ],
        inputs=["serving_default_x:0"],
        outputs=["StatefulPartitionedCall:0"],
    )
    matching = match(reference, converted)
    assert [(p.reference.name, p.how) for p in matching.pairs] == [
        ("input_0", "input"), ("act", "layer"), ("dense", "layer"), ("out", "output"),
    ]  # fmt: skip
    assert [t.name for t in matching.unmatched] == ["weights_only"]


def test_a_layer_lowered_to_several_operators_pairs_with_its_last():
    x = np.ones((1, 1, 6))
    reference = Capture("keras", [tensor("dense", 0, x)], inputs=[], outputs=[])
    converted = Capture(
        "litert", [tensor("m/dense/Reshape", 0, x), tensor("m/dense/MatMul", 1, x)], inputs=[], outputs=[]
    )
    matching = match(reference, converted)
    assert [p.converted.name for p in matching.pairs] == ["m/dense/MatMul"]
    assert [t.name for t in matching.unmatched] == ["m/dense/Reshape"]


def test_channels_first_tensor_is_compared_channels_last():
    rng = np.random.default_rng(0)
    nhwc = rng.standard_normal((3, 1, 2, 5, 4))  # samples, batch, H, W, C
    nchw = np.transpose(nhwc, (0, 1, 4, 2, 3))
    reference = Capture("keras", [tensor("conv", 0, nhwc)], inputs=[], outputs=[])
    converted = Capture("onnxruntime", [tensor("m/conv/Relu:0", 4, nchw)], inputs=[], outputs=[])
    pair = match(reference, converted).pairs[0]
    assert errors(pair.reference.real(), pair.converted_real(), Tolerance()).max_abs == 0


def test_quantization_is_undone_before_comparing():
    real = np.array([[[-1.0, 0.0, 0.5, 1.0]]])
    q = np.round(real / 0.01 + 3).astype(np.int8)
    reference = Capture("keras", [tensor("a", 0, real)], inputs=[], outputs=[])
    converted = Capture("tflm", [tensor("a", 0, q, scale=0.01, zero_point=3)], inputs=[], outputs=[])
    pair = match(reference, converted).pairs[0]
    assert errors(pair.reference.real(), pair.converted_real(), Tolerance()).max_abs == pytest.approx(0, abs=1e-12)


def test_metrics_and_tolerances():
    ref = np.array([[1.0, 2.0, 3.0, 4.0]])
    assert errors(ref, ref, Tolerance()).cosine == pytest.approx(1.0)
    flipped = errors(ref, -ref, Tolerance())
    assert flipped.cosine == pytest.approx(-1.0) and flipped.rel_l2 == pytest.approx(2.0)
    assert fails(flipped, Tolerance())
    near = errors(ref, ref + 0.01, Tolerance(atol=0.001))
    assert near.outside_tolerance == 4 and fails(near, Tolerance(atol=0.001))
    assert not fails(errors(ref, ref + 0.01, Tolerance(atol=0.02)), Tolerance(atol=0.02))
    assert errors(np.zeros((1, 3)), np.zeros((1, 3)), Tolerance()).cosine == 1.0  # a dead ReLU on both sides
    assert growth(0.01, 0.05) == pytest.approx(5.0) and growth(None, 0.05) is None and growth(0.0, 0.05) is None


def test_range_check_reports_clipping_of_an_int8_tensor():
    # int8 with scale 0.01 and zero point 0 represents [-1.28, 1.27]; half the data lies beyond
    data = np.concatenate([np.linspace(-1.0, 1.0, 50), np.linspace(2.0, 3.0, 50)])[None]
    captured = tensor("a", 0, np.zeros((1, 100), dtype=np.int8), scale=0.01, zero_point=0)
    check = range_check(data, captured)
    assert check.clipped and check.clipped_share == pytest.approx(0.5)
    assert check.calibrated == pytest.approx((-1.28, 1.27)) and check.observed == pytest.approx((-1.0, 3.0))
    assert "clipped: 50.0%" in check.describe()
    assert range_check(data, tensor("f", 0, np.zeros((1, 100), dtype=np.float32))) is None
