"""The environment block of a report: where and with what a number was measured."""

from __future__ import annotations

import os
import platform
import sys

from edgekit import __version__
from edgekit._lazy import version_of
from edgekit.link.device import cpu_model  # read the same way on a device

PACKAGES = (
    "numpy",
    "tensorflow",
    "ai-edge-litert",
    "tflite-micro",
    "onnxruntime",
    "tf2onnx",
    "tensorflowjs",
    "mlflow",
)


def environment() -> dict:
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "edgekit": __version__,
        "packages": {name: v for name in PACKAGES if (v := version_of(name))},
    }
