"""TensorFlow Lite: TFLiteConverter for conversion, the LiteRT interpreter for running.

Quantizations: `none` (float32), `fp16` (float16 weights), `dynamic`
(dynamic-range int8 weights) and `int8` (full integer with int8 input and
output, calibrated on a representative data set). `convert_to_tflite` is
also the front half of the `tflm` and `aot` backends.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from edgekit._lazy import require, version_of
from edgekit._quiet import native_output_hidden
from edgekit.datasets import fit_to_shape
from edgekit.backends.base import Backend, ConversionResult
from edgekit.core import Artifact, RunOptions, Runner, TensorSpec
from edgekit.errors import EdgekitError, InvalidModelError
from edgekit.models import SourceModel

CALIBRATION_SAMPLES = 200


def _tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TF's C++ chatter out of user output
    with native_output_hidden():
        tf = require("tensorflow", "tflite")
        # probing devices here runs TF's CUDA initialisation (and its log lines) now, hidden
        tf.config.list_physical_devices()
    tf.get_logger().setLevel("ERROR")
    return tf


def _load_keras(path: Path):
    """A Keras model from .h5/.keras: tf_keras (Keras 2) first, Keras 3 as the fallback."""
    _tf()
    errors = []
    for module_name in ("tf_keras", "keras"):
        try:
            with native_output_hidden():
                keras = require(module_name, "tflite")
                return keras.models.load_model(path, compile=False)
        except EdgekitError:
            raise
        except Exception as exc:  # each loader fails in its own way on the other's files
            errors.append(f"{module_name}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
    raise InvalidModelError(f"{path}: cannot load this Keras model ({'; '.join(errors)})")


def _converter_for(source: SourceModel, workdir: Path):
    """TFLiteConverter for the source, and the per-sample shape of its first input."""
    tf = _tf()
    if source.format == "savedmodel":
        loaded = tf.saved_model.load(str(source.path))
        specs = list(loaded.signatures["serving_default"].structured_input_signature[1].values())
        shape = tuple(specs[0].shape[1:]) if specs else None
        return tf.lite.TFLiteConverter.from_saved_model(str(source.path)), shape
    if source.format == "keras":
        model = _load_keras(source.path)
        shape = tuple(model.inputs[0].shape[1:])
        if model.__class__.__module__.startswith("tf_keras"):
            return tf.lite.TFLiteConverter.from_keras_model(model), shape
        # Keras 3 models convert through an exported SavedModel
        exported = workdir / "saved_model"
        model.export(str(exported), format="tf_saved_model", verbose=False)
        return tf.lite.TFLiteConverter.from_saved_model(str(exported)), shape
    raise EdgekitError(
        f"{source.path}: an ONNX model cannot be converted to TensorFlow Lite here: "
        "use --backend onnx, or give a Keras or SavedModel source"
    )


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
    """Write `source` as a .tflite at `out_path` with the given quantization.

    A .tflite source is taken as it is: copied for `none`, and for `int8` only
    when it is already full-integer (a .tflite cannot be re-quantized).
    """
    out_path = Path(out_path)
    if source.format == "tflite":
        if quantization == ("int8" if is_full_int8(source.path) else "none"):
            shutil.copyfile(source.path, out_path)
            return out_path
        raise EdgekitError(
            f"{source.path} is a .tflite file, which cannot be re-quantized to {quantization}: "
            "give the source model (.keras, .h5 or SavedModel), or leave --quantize out"
        )
    with tempfile.TemporaryDirectory(prefix="edgekit-tflite-") as tmp:
        converter, input_shape = _converter_for(source, Path(tmp))
        _configure(converter, quantization, calibration, source, input_shape)
        try:
            with native_output_hidden():
                flatbuffer = converter.convert()
        except Exception as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise EdgekitError(f"TFLiteConverter failed on {source.ref} ({quantization}): {first}") from None
    out_path.write_bytes(flatbuffer)
    return out_path


def _configure(converter, quantization, calibration, source: SourceModel, input_shape):
    tf = _tf()
    if quantization == "none":
        return
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    elif quantization == "int8":
        if calibration is None:
            raise EdgekitError(
                f"int8 quantization of {source.ref} needs calibration data: pass --calibration "
                "digits|mnist5k|FILE.npz, or register the model with --dataset"
            )
        samples = np.asarray(calibration, dtype=np.float32)[:CALIBRATION_SAMPLES]
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
        raise EdgekitError(f"unknown quantization '{quantization}': choose none, fp16, dynamic or int8")


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

    def toolchain(self):
        return {"tensorflow": version_of("tensorflow") or "absent"}

    def convert(self, source, recipe, target, calibration, out_dir):
        path = convert_to_tflite(source, recipe.quantization, calibration, Path(out_dir) / "model.tflite")
        runner = LiteRTRunner(path)
        return ConversionResult(primary=path.name, inputs=runner.inputs, outputs=runner.outputs)

    def load(self, artifact: Artifact, target, options: RunOptions) -> Runner:
        return LiteRTRunner(artifact.primary_path, threads=options.threads)
