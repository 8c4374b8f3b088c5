"""TensorFlow, imported on first use with its native log lines hidden; tf2onnx beside it."""

from __future__ import annotations

import os

from edgekit._lazy import require
from edgekit._quiet import native_output_hidden


def load_tensorflow(extra: str = "tflite"):
    """The `tensorflow` module; a missing one is an error naming the pip `extra` that brings it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TF's C++ chatter out of user output
    with native_output_hidden():
        tf = require("tensorflow", extra)
        # probing devices here runs TF's CUDA initialisation (and its log lines) now, hidden
        tf.config.list_physical_devices()
    tf.get_logger().setLevel("ERROR")
    return tf


def load_tf2onnx():
    """The `tf2onnx` module (it imports TensorFlow, whose log lines stay hidden)."""
    load_tensorflow("onnx")
    with native_output_hidden():
        return require("tf2onnx", "onnx")
