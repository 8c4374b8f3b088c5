"""TensorFlow Lite: TFLiteConverter for conversion, the LiteRT interpreter for running.

Quantizations: `none` (float32), `fp16` (float16 weights), `dynamic`
(dynamic-range int8 weights) and `int8` (full integer with int8 input and
output, calibrated on a representative data set). `convert_to_tflite` is
also the front half of the `tflm` and `aot` backends.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit._lazy import require, version_of
from edgekit._quiet import native_output_hidden
from edgekit.datasets import fit_to_shape
from edgekit.backends.base import Backend, ConversionResult
from edgekit.core import Artifact, RunOptions, Runner, TensorSpec
from edgekit.errors import InvalidModelError
from edgekit.models import SourceModel
from edgekit.sources import loader_for
from edgekit.sources.tensorflow import load_tensorflow


def is_full_int8(path: Path) -> bool:
    """True when every model input and output is int8 (an already-quantized model).

    Read with edgekit's own validating reader: no interpreter sees a user's
    file before it has been checked.
    """
    from edgekit.tflite.reader import read_model

    model = read_model(path)
    return all(model.tensors[i].dtype == "int8" for i in (*model.inputs, *model.outputs))


def convert_to_tflite(
    source: SourceModel, quantization: str, calibration: np.ndarray | None, out_path: Path
) -> Path:
    """Write `source` as a .tflite at `out_path` with the quantization decided for it.

    `quantization` and `calibration` come from `edgekit.quantization.decide`:
    for int8 from a float model the calibration samples are there, and a
    .tflite source is taken as it is.
    """

    def configure(converter, input_shape):
        _configure(converter, quantization, calibration, input_shape)

    return loader_for(source).write_tflite(Path(out_path), quantization, configure)


def _configure(converter, quantization, calibration, input_shape):
    if quantization == "none":
        return
    tf = load_tensorflow()
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    elif quantization == "int8":
        if calibration is None:  # decide() gives samples with every int8 decision that converts
            raise ValueError("int8 conversion needs the calibration samples decided for it")
        samples = np.asarray(calibration, dtype=np.float32)
        if input_shape and None not in input_shape:
            samples = fit_to_shape(samples, input_shape, "the calibration data")

        def representative():
            for sample in samples:
                yield [sample[None, ...]]

        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    elif quantization != "dynamic":
        raise ValueError(f"unknown quantization {quantization!r}")


def load_interpreter(path: Path, threads: int | None = None):
    """LiteRT over `path`, once edgekit's reader has found the file safe (LiteRT trusts its model)."""
    from edgekit.tflite.reader import validate_file

    validate_file(path)  # also an artifact read back from disk: a crafted file crashes LiteRT
    litert = require("ai_edge_litert.interpreter", "tflite")
    try:
        with native_output_hidden():
            interpreter = litert.Interpreter(model_path=str(path), num_threads=threads)
            interpreter.allocate_tensors()
    except ValueError as exc:
        raise InvalidModelError(f"{path}: LiteRT cannot load this model ({exc})") from None
    return interpreter


def _spec(detail: dict) -> TensorSpec:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    shape = detail.get("shape_signature", detail["shape"])
    quantized = scale != 0.0
    return TensorSpec(
        name=detail["name"],
        shape=tuple(int(d) for d in shape),
        dtype=np.dtype(detail["dtype"]).name,
        scale=float(scale) if quantized else None,
        zero_point=int(zero_point) if quantized else None,
    )


class LiteRTRunner(Runner):
    """Runs a .tflite on the LiteRT interpreter (XNNPACK on the CPU), with a thread count."""

    name = "litert"

    def __init__(self, path: Path, threads: int | None = None):
        self.path = Path(path)
        self.threads = threads
        self.interpreter = load_interpreter(self.path, threads)
        self._in = self.interpreter.get_input_details()
        self._out = self.interpreter.get_output_details()
        self.inputs = [_spec(d) for d in self._in]
        self.outputs = [_spec(d) for d in self._out]
        self._shapes = {d["index"]: tuple(d["shape"]) for d in self._in}
        self._input_slots = [(d["index"], d["name"]) for d in self._in]
        self._output_slots = [(d["index"], d["name"]) for d in self._out]
        # bound once: attribute lookups are a measurable share of a microsecond-long inference
        self._set_tensor = self.interpreter.set_tensor
        self._get_tensor = self.interpreter.get_tensor
        self._invoke = self.interpreter.invoke

    def check_feed(self, feed):
        super().check_feed(feed)
        # a new batch size reshapes the interpreter here, once, not on every inference
        for index, name in self._input_slots:
            shape = feed[name].shape
            if shape != self._shapes[index]:
                self.interpreter.resize_tensor_input(index, shape)
                self.interpreter.allocate_tensors()
                self._shapes[index] = shape

    def _infer(self, feed):
        # the hot path of every host benchmark: nothing beyond what a bare LiteRT loop does
        set_tensor, get_tensor = self._set_tensor, self._get_tensor
        for index, name in self._input_slots:
            set_tensor(index, feed[name])
        self._invoke()
        return {name: get_tensor(index) for index, name in self._output_slots}


class TfliteBackend(Backend):
    name = "tflite"
    quantizations = ("none", "fp16", "dynamic", "int8")
    extra = "tflite"
    runs_on = ("host", "ssh")
    runtime_modules = ("ai_edge_litert.interpreter",)

    def toolchain(self):
        return {"tensorflow": version_of("tensorflow") or "absent"}

    def convert(self, source, recipe, target, calibration, out_dir):
        path = convert_to_tflite(source, recipe.quantization, calibration, Path(out_dir) / "model.tflite")
        runner = LiteRTRunner(path)
        return ConversionResult(primary=path.name, inputs=runner.inputs, outputs=runner.outputs)

    def load(self, artifact: Artifact, target, options: RunOptions) -> Runner:
        return LiteRTRunner(artifact.primary_path, threads=options.threads)
