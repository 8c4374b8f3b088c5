"""ONNX: tf2onnx for export, onnxruntime for running.

Quantizations: `none`, and `dynamic` (onnxruntime's dynamic int8 weights).
An `.onnx` source is taken as it is.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from edgekit._lazy import require, version_of
from edgekit._quiet import native_output_hidden
from edgekit.backends.base import Backend, ConversionResult
from edgekit.core import Artifact, RunOptions, Runner, TensorSpec
from edgekit.errors import EdgekitError, InvalidModelError
from edgekit.models import SourceModel

OPSET = 17

_ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(int8)": "int8",
    "tensor(uint8)": "uint8",
    "tensor(int32)": "int32",
    "tensor(int64)": "int64",
    "tensor(bool)": "bool",
}


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def export_onnx(source: SourceModel, out_path: Path) -> Path:
    """Write `source` as an ONNX model (opset 17) at `out_path`."""
    if source.format == "onnx":
        onnx = require("onnx", "onnx")
        try:
            onnx.checker.check_model(onnx.load(str(source.path)))
        except Exception as exc:  # onnx raises its own types for each kind of damage
            raise InvalidModelError(f"{source.path}: not a valid ONNX model ({_first_line(exc)})") from None
        shutil.copyfile(source.path, out_path)
        return out_path
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with native_output_hidden():
        tf2onnx = require("tf2onnx", "onnx")
        tf = require("tensorflow", "onnx")
    try:
        if source.format == "tflite":
            with native_output_hidden():
                tf2onnx.convert.from_tflite(str(source.path), opset=OPSET, output_path=str(out_path))
        elif source.format == "keras":
            from edgekit.sources.keras import load_keras

            model = load_keras(source.path)
            signature = [
                tf.TensorSpec((None, *t.shape[1:]), t.dtype, name=f"input_{i}")
                for i, t in enumerate(model.inputs)
            ]
            function = tf.function(lambda *args: model(list(args) if len(args) > 1 else args[0]))
            with native_output_hidden():
                tf2onnx.convert.from_function(
                    function, input_signature=signature, opset=OPSET, output_path=str(out_path)
                )
        elif source.format == "savedmodel":
            loaded = tf.saved_model.load(str(source.path))
            serving = loaded.signatures["serving_default"]
            signature = list(serving.structured_input_signature[1].values())
            with native_output_hidden():
                tf2onnx.convert.from_function(
                    serving, input_signature=signature, opset=OPSET, output_path=str(out_path)
                )
        else:
            raise EdgekitError(f"{source.path}: cannot export a {source.format} model to ONNX")
    except EdgekitError:
        raise
    except Exception as exc:
        raise EdgekitError(f"tf2onnx failed on {source.ref}: {_first_line(exc)}") from None
    return out_path


class OnnxRuntimeRunner(Runner):
    """Runs an ONNX model on onnxruntime's CPU execution provider."""

    name = "onnxruntime"

    def __init__(self, path: Path, threads: int | None = None):
        ort = require("onnxruntime", "onnx")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own exception types for bad files
            raise InvalidModelError(f"{path}: onnxruntime cannot load this model ({_first_line(exc)})") from None
        self.inputs = [self._spec(i) for i in self.session.get_inputs()]
        self.outputs = [self._spec(o) for o in self.session.get_outputs()]

    @staticmethod
    def _spec(node) -> TensorSpec:
        shape = tuple(d if isinstance(d, int) and d > 0 else -1 for d in node.shape)
        return TensorSpec(name=node.name, shape=shape, dtype=_ORT_TYPES.get(node.type, node.type))

    def _infer(self, feed):
        names = [o.name for o in self.outputs]
        values = self.session.run(names, feed)
        return {name: np.asarray(value) for name, value in zip(names, values)}


def _with_quantization(specs: list[TensorSpec], originals: list[TensorSpec]) -> list[TensorSpec]:
    """`specs` in order, each with the scale and zero point of its original when both are integers."""
    if len(specs) != len(originals):
        return specs
    return [
        TensorSpec(s.name, s.shape, s.dtype, o.scale, o.zero_point)
        if o.quantized and s.dtype == o.dtype else s
        for s, o in zip(specs, originals)
    ]


class OnnxBackend(Backend):
    name = "onnx"
    quantizations = ("none", "dynamic")
    extra = "onnx"

    def toolchain(self):
        return {
            "tf2onnx": version_of("tf2onnx") or "absent",
            "onnx": version_of("onnx") or "absent",
            "onnxruntime": version_of("onnxruntime") or "absent",
            "opset": str(OPSET),
        }

    def convert(self, source, recipe, target, calibration, out_dir):
        out_dir = Path(out_dir)
        path = export_onnx(source, out_dir / "model.onnx")
        if recipe.quantization == "dynamic":
            quantization = require("onnxruntime.quantization", "onnx")
            float_path = out_dir / "model.float.onnx"
            path.rename(float_path)
            quantization.quantize_dynamic(str(float_path), str(path), weight_type=quantization.QuantType.QInt8)
            float_path.unlink()
        runner = OnnxRuntimeRunner(path)
        inputs, outputs = runner.inputs, runner.outputs
        if source.format == "tflite":
            # ONNX has no per-tensor scale on a graph's int8 inputs and outputs: keep the .tflite's
            from edgekit.backends.tflite import LiteRTRunner

            with LiteRTRunner(source.path) as original:
                inputs = _with_quantization(inputs, original.inputs)
                outputs = _with_quantization(outputs, original.outputs)
        return ConversionResult(primary=path.name, inputs=inputs, outputs=outputs)

    def load(self, artifact: Artifact, target, options: RunOptions) -> Runner:
        runner = OnnxRuntimeRunner(artifact.primary_path, threads=options.threads)
        # the artifact's interface carries what the file cannot (int8 scales from a .tflite source)
        runner.inputs = _with_quantization(runner.inputs, artifact.inputs)
        runner.outputs = _with_quantization(runner.outputs, artifact.outputs)
        return runner
