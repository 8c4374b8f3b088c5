"""The op resolver: exactly the model's operators, TFLM's method names, unsupported ops named."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from edgekit.tflite.reader import validate_file
from edgekit.tflm import resolver
from edgekit.tflm.ops import BUILTIN_RESOLVER_METHODS, CUSTOM_RESOLVER_METHODS

KWS_OPS = ["CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"]


def registered(header: str) -> list[str]:
    return re.findall(r"resolver\.(\w+)\(\)", header)


def test_kws_resolver_is_exactly_its_six_ops(mlperf_dir):
    ops = validate_file(mlperf_dir / "kws_ref_model.tflite").ops_used()
    assert sorted(ops) == sorted(KWS_OPS)
    header = resolver.render_ops_header(ops)
    assert "constexpr int kModelOpCount = 6;" in header
    assert "using ModelOpResolver = tflite::MicroMutableOpResolver<kModelOpCount>;" in header
    assert sorted(registered(header)) == sorted(
        ["AddConv2D", "AddDepthwiseConv2D", "AddAveragePool2D", "AddReshape",
         "AddFullyConnected", "AddSoftmax"]
    )
    assert '#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"' in header


def test_ad01_resolver_has_one_op(mlperf_dir):
    ops = validate_file(mlperf_dir / "ad01_int8.tflite").ops_used()
    header = resolver.render_ops_header(ops)
    assert registered(header) == ["AddFullyConnected"]
    assert "kModelOpCount = 1;" in header


def test_unsupported_ops_are_all_named():
    with pytest.raises(resolver.UnsupportedOpError) as caught:
        resolver.render_ops_header(["CONV_2D", "TOPK_V2", "CUSTOM:MyOp", "SOFTMAX"])
    message = str(caught.value)
    assert "TOPK_V2" in message and "CUSTOM:MyOp" in message
    assert "CONV_2D" not in message and "\n" not in message
    assert caught.value.ops == ["TOPK_V2", "CUSTOM:MyOp"]


def test_custom_ops_tflm_ships_are_registered_by_name():
    header = resolver.render_ops_header(["CUSTOM:TFLite_Detection_PostProcess"])
    assert registered(header) == ["AddDetectionPostprocess"]


@pytest.mark.skipif(not os.environ.get("TFLM_DIR"), reason="TFLM_DIR (a TensorFlow Lite Micro tree) not set")
def test_every_method_exists_in_the_tflm_checkout():
    header = Path(os.environ["TFLM_DIR"], "tensorflow/lite/micro/micro_mutable_op_resolver.h").read_text()
    declared = set(re.findall(r"TfLiteStatus (Add\w+)\(", header))
    ours = set(BUILTIN_RESOLVER_METHODS.values()) | set(CUSTOM_RESOLVER_METHODS.values())
    assert ours <= declared, sorted(ours - declared)
