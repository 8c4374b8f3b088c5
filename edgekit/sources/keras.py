"""Keras models (.keras, .h5): tf_keras (Keras 2) first, Keras 3 as the fallback."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np

from edgekit._lazy import require
from edgekit._quiet import native_output_hidden
from edgekit.core import Runner, TensorSpec
from edgekit.errors import EdgekitError, InvalidModelError
from edgekit.sources.base import TensorFlowLoader
from edgekit.sources.tensorflow import load_tensorflow, load_tf2onnx


def load_keras(path: Path):
    """A Keras model from .h5/.keras: tf_keras (Keras 2) first, Keras 3 as the fallback."""
    load_tensorflow()
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


def _is_keras2(model) -> bool:
    return model.__class__.__module__.startswith("tf_keras")


class KerasRunner(Runner):
    """A Keras model (.h5/.keras) run in TensorFlow, batched."""

    name = "keras"
    batched = True

    def __init__(self, model):
        self.model = model
        self.inputs = [
            TensorSpec(name=f"input_{i}", shape=(-1, *(int(d) for d in t.shape[1:])), dtype="float32")
            for i, t in enumerate(self.model.inputs)
        ]
        self.outputs = [
            TensorSpec(name=f"output_{i}", shape=(-1, *(int(d) for d in t.shape[1:])), dtype="float32")
            for i, t in enumerate(self.model.outputs)
        ]

    def _infer(self, feed):
        args = [feed[spec.name] for spec in self.inputs]
        result = self.model(args if len(args) > 1 else args[0], training=False)
        result = result if isinstance(result, (list, tuple)) else [result]
        return {spec.name: np.asarray(r) for spec, r in zip(self.outputs, result)}


class KerasLoader(TensorFlowLoader):
    format = "keras"

    @cached_property
    def model(self):
        return load_keras(self.path)

    def reference_runner(self) -> Runner:
        return KerasRunner(self.model)

    def input_shape(self):
        return tuple(self.model.inputs[0].shape[1:])

    def tflite_converter(self, workdir: Path):
        tf = load_tensorflow()
        if _is_keras2(self.model):
            return tf.lite.TFLiteConverter.from_keras_model(self.model)
        # Keras 3 models convert through an exported SavedModel
        exported = Path(workdir) / "saved_model"
        with native_output_hidden():
            self.model.export(str(exported), format="tf_saved_model", verbose=False)
        return tf.lite.TFLiteConverter.from_saved_model(str(exported))

    def saved_model(self, workdir: Path) -> Path:
        """The model saved as a SavedModel whose signature takes any batch size.

        One tf.function around the model works for Keras 2 (tf_keras) and Keras 3
        alike; inputs are named input_0.. and outputs output_0.., as the
        reference runner names them.
        """
        tf = load_tensorflow()
        model = self.model
        folder = Path(workdir) / "saved_model"
        signature = [
            tf.TensorSpec((None, *t.shape[1:]), t.dtype, name=f"input_{i}") for i, t in enumerate(model.inputs)
        ]

        def serve(*args):
            result = model(list(args) if len(args) > 1 else args[0], training=False)
            result = result if isinstance(result, (list, tuple)) else [result]
            return {f"output_{i}": r for i, r in enumerate(result)}

        module = tf.Module()
        module.model = model  # tracked, so the SavedModel carries the weights
        module.serve = tf.function(serve, input_signature=signature)
        with native_output_hidden():
            tf.saved_model.save(module, str(folder), signatures={"serving_default": module.serve.get_concrete_function()})
        return folder

    def write_onnx(self, out_path: Path, opset: int) -> Path:
        tf2onnx = load_tf2onnx()
        tf = load_tensorflow("onnx")
        model = self.model
        signature = [
            tf.TensorSpec((None, *t.shape[1:]), t.dtype, name=f"input_{i}") for i, t in enumerate(model.inputs)
        ]
        function = tf.function(lambda *args: model(list(args) if len(args) > 1 else args[0]))
        with native_output_hidden():
            tf2onnx.convert.from_function(function, input_signature=signature, opset=opset, output_path=str(out_path))
        return Path(out_path)
