"""ONNX: tf2onnx for export, onnxruntime for running.

Quantizations: `none`, and `dynamic` (onnxruntime's dynamic int8 weights).
An `.onnx` source is taken as it is, and a full-integer .tflite keeps its
int8 interface. Each source format's export lives in its loader
(`edgekit.sources`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit._lazy import require, version_of
from edgekit.backends.base import Backend, ConversionResult
from edgekit.core import Artifact, RunOptions, Runner, TensorSpec
from edgekit.errors import EdgekitError, InvalidModelError
from edgekit.sources import loader_for
from edgekit.sources.base import SourceLoader, first_line

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


def export_onnx(loader: SourceLoader, out_path: Path) -> Path:
    """Write the loader's source model as an ONNX model (opset 17) at `out_path`."""
    try:
        return loader.write_onnx(Path(out_path), OPSET)
    except EdgekitError:
        raise
    except Exception as exc:  # tf2onnx raises many types, each with a useful first line
        raise EdgekitError(f"tf2onnx failed on {loader.source.ref}: {first_line(exc)}") from None


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
            raise InvalidModelError(f"{path}: onnxruntime cannot load this model ({first_line(exc)})") from None
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
    runs_on = ("host", "ssh")
    runtime_modules = ("onnxruntime",)

    def toolchain(self):
        return {
            "tf2onnx": version_of("tf2onnx") or "absent",
            "onnx": version_of("onnx") or "absent",
            "onnxruntime": version_of("onnxruntime") or "absent",
            "opset": str(OPSET),
        }

    def convert(self, source, recipe, target, calibration, out_dir):
        out_dir = Path(out_dir)
        loader = loader_for(source)
        path = export_onnx(loader, out_dir / "model.onnx")
        if recipe.quantization == "dynamic":
            quantization = require("onnxruntime.quantization", "onnx")
            float_path = out_dir / "model.float.onnx"
            path.rename(float_path)
            quantization.quantize_dynamic(str(float_path), str(path), weight_type=quantization.QuantType.QInt8)
            float_path.unlink()
        runner = OnnxRuntimeRunner(path)
        # ONNX has no per-tensor scale on a graph's int8 inputs and outputs: keep the source's
        # (an int8 .tflite has them; a float source has none, and nothing changes)
        originals = loader.interface()
        inputs = _with_quantization(runner.inputs, originals[0])
        outputs = _with_quantization(runner.outputs, originals[1])
        return ConversionResult(primary=path.name, inputs=inputs, outputs=outputs)

    def load(self, artifact: Artifact, target, options: RunOptions) -> Runner:
        runner = OnnxRuntimeRunner(artifact.primary_path, threads=options.threads)
        # the artifact's interface carries what the file cannot (int8 scales from a .tflite source)
        runner.inputs = _with_quantization(runner.inputs, artifact.inputs)
        runner.outputs = _with_quantization(runner.outputs, artifact.outputs)
        return runner
