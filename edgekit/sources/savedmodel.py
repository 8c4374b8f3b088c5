"""TensorFlow SavedModel folders, through their `serving_default` signature."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

import numpy as np

from edgekit._quiet import native_output_hidden
from edgekit.core import Runner, TensorSpec
from edgekit.errors import InvalidModelError
from edgekit.sources.base import TensorFlowLoader, first_line
from edgekit.sources.tensorflow import load_tensorflow, load_tf2onnx

SIGNATURE = "serving_default"


def open_savedmodel(path: Path):
    """The loaded SavedModel at `path`, or InvalidModelError; it must have a `serving_default` signature."""
    tf = load_tensorflow()
    try:
        with native_output_hidden():
            loaded = tf.saved_model.load(str(path))
    except Exception as exc:  # TF raises its own types for each kind of damage
        raise InvalidModelError(f"{path}: cannot load this SavedModel ({first_line(exc)})") from None
    if SIGNATURE not in loaded.signatures:
        raise InvalidModelError(
            f"{path}: the SavedModel has no '{SIGNATURE}' signature (it has: "
            f"{', '.join(sorted(loaded.signatures)) or 'none'}): export it with one"
        )
    return loaded


def _spec(name: str, spec) -> TensorSpec:
    return TensorSpec(name=name, shape=tuple(-1 if d is None else int(d) for d in spec.shape), dtype=spec.dtype.name)


class SavedModelRunner(Runner):
    """A SavedModel's `serving_default` signature run in TensorFlow, batched."""

    name = "savedmodel"
    batched = True

    def __init__(self, loaded):
        self._tf = load_tensorflow()
        self.loaded = loaded
        self.function = loaded.signatures[SIGNATURE]
        self.inputs = [_spec(n, s) for n, s in sorted(self.function.structured_input_signature[1].items())]
        self.outputs = [_spec(n, s) for n, s in sorted(self.function.structured_outputs.items())]

    def _infer(self, feed):
        result = self.function(**{k: self._tf.constant(v) for k, v in feed.items()})
        return {name: np.asarray(value) for name, value in result.items()}


class SavedModelLoader(TensorFlowLoader):
    format = "savedmodel"

    @cached_property
    def loaded(self):
        return open_savedmodel(self.path)

    @property
    def serving(self):
        return self.loaded.signatures[SIGNATURE]

    def reference_runner(self) -> Runner:
        return SavedModelRunner(self.loaded)

    def input_shape(self):
        specs = list(self.serving.structured_input_signature[1].values())
        return tuple(specs[0].shape[1:]) if specs else None

    def tflite_converter(self, workdir: Path):
        self.loaded  # a damaged folder fails here with its own message, not inside the converter
        return load_tensorflow().lite.TFLiteConverter.from_saved_model(str(self.path))

    def saved_model(self, workdir: Path) -> Path:
        return self.path

    def write_onnx(self, out_path: Path, opset: int) -> Path:
        tf2onnx = load_tf2onnx()
        tf = load_tensorflow("onnx")
        serving = self.serving
        inputs = sorted(serving.structured_input_signature[1].items())
        signature = [tf.TensorSpec(spec.shape, spec.dtype, name=name) for name, spec in inputs]
        # tf2onnx traces a tf.function; a loaded signature is a concrete function, so wrap it in one
        # (positional arguments in name order: keyword-only input signatures do not trace)
        function = tf.function(lambda *args: serving(**{name: a for (name, _), a in zip(inputs, args)}))
        with native_output_hidden():
            tf2onnx.convert.from_function(function, input_signature=signature, opset=opset, output_path=str(out_path))
        return Path(out_path)
