"""Keras models (.keras, .h5): tf_keras (Keras 2) first, Keras 3 as the fallback."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit._lazy import require
from edgekit._quiet import native_output_hidden
from edgekit.core import Runner, TensorSpec
from edgekit.errors import EdgekitError, InvalidModelError
from edgekit.sources.tensorflow import load_tensorflow


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


class KerasRunner(Runner):
    """A Keras model (.h5/.keras) run in TensorFlow, batched."""

    name = "keras"
    batched = True

    def __init__(self, path):
        self.model = load_keras(path)
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
