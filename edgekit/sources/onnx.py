"""ONNX models: checked with `onnx.checker`, run on onnxruntime, taken as they are by the onnx backend."""

from __future__ import annotations

import shutil
from pathlib import Path

from edgekit._lazy import require
from edgekit.core import Runner
from edgekit.errors import EdgekitError, InvalidModelError
from edgekit.sources.base import SourceLoader, first_line


def check_onnx(path: Path) -> None:
    """Raise InvalidModelError naming `path` unless it is a well-formed ONNX model."""
    onnx = require("onnx", "onnx")
    try:
        onnx.checker.check_model(onnx.load(str(path)))
    except Exception as exc:  # onnx raises its own types for each kind of damage
        raise InvalidModelError(f"{path}: not a valid ONNX model ({first_line(exc)})") from None


class OnnxLoader(SourceLoader):
    format = "onnx"

    def reference_runner(self) -> Runner:
        from edgekit.backends.onnx import OnnxRuntimeRunner

        return OnnxRuntimeRunner(self.path)

    def write_tflite(self, out_path, quantization, configure):
        raise EdgekitError(
            f"{self.path}: an ONNX model cannot be converted to TensorFlow Lite here: "
            "use --backend onnx, or give a Keras or SavedModel source"
        )

    def write_onnx(self, out_path: Path, opset: int) -> Path:
        check_onnx(self.path)
        shutil.copyfile(self.path, out_path)
        return Path(out_path)
