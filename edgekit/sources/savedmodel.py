"""TensorFlow SavedModel folders, through their `serving_default` signature."""

from __future__ import annotations

import numpy as np

from edgekit.core import Runner, TensorSpec
from edgekit.sources.tensorflow import load_tensorflow


class SavedModelRunner(Runner):
    """A SavedModel's `serving_default` signature run in TensorFlow, batched."""

    name = "savedmodel"
    batched = True

    def __init__(self, path):
        tf = load_tensorflow()
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
