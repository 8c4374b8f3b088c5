"""Runners on the source model itself: the reference that fidelity is measured against.

A converted model is judged by how far its outputs move from the source
model's own outputs on the same inputs (Polygraphy's comparator idea).
"""

from __future__ import annotations

import os

import numpy as np

from edgekit._lazy import require
from edgekit.core import Runner, TensorSpec
from edgekit.models import SourceModel


class KerasRunner(Runner):
    """A Keras model (.h5/.keras) run in TensorFlow, batched."""

    name = "keras"
    batched = True

    def __init__(self, path):
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        from edgekit.backends.tflite import _load_keras

        self.model = _load_keras(path)
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


class SavedModelRunner(Runner):
    """A SavedModel's `serving_default` signature run in TensorFlow, batched."""

    name = "savedmodel"
    batched = True

    def __init__(self, path):
        from edgekit.backends.tflite import _tf

        tf = _tf()
        self._tf = tf
        self.loaded = tf.saved_model.load(str(path))
        self.function = self.loaded.signatures["serving_default"]
        inputs = self.function.structured_input_signature[1]
        self.inputs = [
            TensorSpec(name=name, shape=tuple(-1 if d is None else int(d) for d in spec.shape), dtype=spec.dtype.name)
            for name, spec in sorted(inputs.items())
        ]
        outputs = self.function.structured_outputs
        self.outputs = [
            TensorSpec(name=name, shape=tuple(-1 if d is None else int(d) for d in spec.shape), dtype=spec.dtype.name)
            for name, spec in sorted(outputs.items())
        ]

    def _infer(self, feed):
        result = self.function(**{k: self._tf.constant(v) for k, v in feed.items()})
        return {name: np.asarray(value) for name, value in result.items()}


def source_runner(source: SourceModel) -> Runner:
    """A runner on the source model, in the framework it was written in."""
    if source.format == "keras":
        return KerasRunner(source.path)
    if source.format == "savedmodel":
        return SavedModelRunner(source.path)
    if source.format == "onnx":
        from edgekit.backends.onnx import OnnxRuntimeRunner

        return OnnxRuntimeRunner(source.path)
    from edgekit.backends.tflite import LiteRTRunner

    return LiteRTRunner(source.path)
