"""TensorFlow Lite flatbuffers (.tflite): already converted, so taken as they are."""

from __future__ import annotations

import shutil
from pathlib import Path

from edgekit._quiet import native_output_hidden
from edgekit.core import Runner
from edgekit.sources.base import SourceLoader
from edgekit.sources.tensorflow import load_tf2onnx


class TfliteLoader(SourceLoader):
    format = "tflite"

    def fixed_quantization(self) -> str:
        # a .tflite cannot be re-quantized: full-integer files are int8, anything else float
        from edgekit.backends.tflite import is_full_int8

        return "int8" if is_full_int8(self.path) else "none"

    def reference_runner(self) -> Runner:
        from edgekit.backends.tflite import LiteRTRunner

        return LiteRTRunner(self.path)

    def write_tflite(self, out_path, quantization, configure):
        # the quantization decided for a .tflite source is the file's own: nothing to convert.
        # Reading it first runs edgekit's validating reader on the user's file, so a damaged
        # one is refused under the name the user gave, before any runtime sees the copy.
        self.fixed_quantization()
        shutil.copyfile(self.path, out_path)
        return Path(out_path)

    def write_onnx(self, out_path: Path, opset: int) -> Path:
        tf2onnx = load_tf2onnx()
        with native_output_hidden():
            tf2onnx.convert.from_tflite(str(self.path), opset=opset, output_path=str(out_path))
        return Path(out_path)
