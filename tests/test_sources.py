"""Source loaders: one per format, and every backend and the reference open a source through it.

One tiny seeded model is written in every source format edgekit takes
(.keras and .h5 from tf_keras, .keras from Keras 3, SavedModel, ONNX through
tf2onnx, .tflite); each format's reference runner, and each backend's
artifact made from it, must answer like the model itself.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from edgekit import pipeline, sources
from edgekit.backends.onnx import OnnxRuntimeRunner
from edgekit.backends.tflite import LiteRTRunner
from edgekit.models import FORMATS, open_source
from edgekit.reference import source_runner

import tinymodels

INPUT_SHAPE = (8, 8, 1)
# file name -> the format edgekit must recognise it as
FILES = {
    "tiny.keras": "keras",
    "tiny.h5": "keras",
    "tiny_keras3.keras": "keras",
    "tiny_savedmodel": "savedmodel",
    "tiny.onnx": "onnx",
    "tiny.tflite": "tflite",
}


def _keras3_twin(model):
    """The same layers and weights as a Keras 3 model (tf_keras cannot load its .keras file)."""
    import keras

    inputs = keras.Input(INPUT_SHAPE, batch_size=1)
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu6")(x)
    x = keras.layers.AveragePooling2D(2)(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(4)(x)
    twin = keras.Model(inputs, keras.layers.Softmax()(x))
    twin.set_weights(model.get_weights())
    return twin


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """{file name: path} for one tiny model in every format, and its own outputs on seeded inputs."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from edgekit.sources.tensorflow import load_tensorflow

    tf = load_tensorflow()
    import tf2onnx

    folder = tmp_path_factory.mktemp("sources")
    model = tinymodels.tiny_cnn(INPUT_SHAPE, seed=3)
    model.save(folder / "tiny.keras")
    model.save(folder / "tiny.h5")
    _keras3_twin(model).save(folder / "tiny_keras3.keras")
    tf.saved_model.save(model, str(folder / "tiny_savedmodel"))
    signature = [tf.TensorSpec((1, *INPUT_SHAPE), tf.float32, name="x")]
    tf2onnx.convert.from_function(
        tf.function(lambda x: model(x)), input_signature=signature, opset=17,
        output_path=str(folder / "tiny.onnx"),
    )
    (folder / "tiny.tflite").write_bytes(tinymodels.to_tflite(model))
    x = tinymodels.calibration_data(INPUT_SHAPE, count=4, seed=3)
    expected = np.concatenate([model(sample[None]).numpy() for sample in x])
    return {name: folder / name for name in FILES}, x, expected


def _outputs(runner, x) -> np.ndarray:
    (spec,) = runner.inputs
    return np.concatenate([next(iter(runner.infer({spec.name: s[None]}).values())) for s in x])


def test_every_format_has_exactly_one_loader():
    assert sorted(sources.LOADERS) == sorted(FORMATS)
    assert all(loader.format == fmt for fmt, loader in sources.LOADERS.items())


@pytest.mark.parametrize("name", FILES)
def test_each_format_opens_with_its_loader_and_answers_like_the_model(name, models):
    paths, x, expected = models
    source = open_source(paths[name])
    assert source.format == FILES[name]
    assert type(sources.loader_for(source)) is sources.LOADERS[FILES[name]]
    with source_runner(source) as reference:
        np.testing.assert_allclose(_outputs(reference, x), expected, rtol=1e-5, atol=1e-6)


def test_keras3_files_load_with_the_keras3_fallback(models):
    paths, _, _ = models
    loader = sources.loader_for(open_source(paths["tiny_keras3.keras"]))
    assert not type(loader.model).__module__.startswith("tf_keras")
    assert type(sources.loader_for(open_source(paths["tiny.h5"])).model).__module__.startswith("tf_keras")


@pytest.fixture
def loader_calls(monkeypatch):
    """Every call a conversion or a reference makes on a loader, as (format, method): the real loaders run."""
    calls = []
    for fmt, real in list(sources.LOADERS.items()):
        def recorded(method, fmt=fmt, real=real):
            def call(self, *args, **kwargs):
                calls.append((fmt, method))
                return getattr(real, method)(self, *args, **kwargs)
            return call

        methods = ("fixed_quantization", "reference_runner", "write_tflite", "write_onnx")
        monkeypatch.setitem(sources.LOADERS, fmt, type(real.__name__, (real,), {m: recorded(m) for m in methods}))
    return calls


@pytest.mark.parametrize(
    "name, backend",
    [
        ("tiny.keras", "tflite"), ("tiny.h5", "tflite"), ("tiny_keras3.keras", "tflite"),
        ("tiny_savedmodel", "tflite"), ("tiny.tflite", "tflite"),
        ("tiny.keras", "onnx"), ("tiny_keras3.keras", "onnx"), ("tiny_savedmodel", "onnx"),
        ("tiny.onnx", "onnx"), ("tiny.tflite", "onnx"),
    ],
)
def test_backends_and_the_reference_open_each_format_through_its_loader(name, backend, models, loader_calls):
    paths, x, expected = models
    fmt = FILES[name]
    conversion = pipeline.convert(str(paths[name]), "host-cpu", backend, "none")
    assert not conversion.cached
    write = "write_tflite" if backend == "tflite" else "write_onnx"
    assert (fmt, write) in loader_calls and {f for f, _ in loader_calls} == {fmt}
    runner_class = LiteRTRunner if backend == "tflite" else OnnxRuntimeRunner
    with runner_class(conversion.artifact.primary_path) as ours:
        np.testing.assert_allclose(_outputs(ours, x), expected, rtol=1e-4, atol=1e-5)
    loader_calls.clear()
    with source_runner(conversion.source) as reference:
        np.testing.assert_allclose(_outputs(reference, x), expected, rtol=1e-5, atol=1e-6)
    assert loader_calls == [(fmt, "reference_runner")]
