"""Real models through the tflm backend: an MNIST CNN, and the MLPerf Tiny source models.

Slow (training, TensorFlow conversions of real models), so marked `slow`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tflite_micro", reason="tflite-micro not installed")

from edgekit import backends, targets  # noqa: E402
from edgekit.tflite.reader import validate_file  # noqa: E402
from edgekit.core import Artifact, RunOptions  # noqa: E402
from edgekit.backends.tflite import LiteRTRunner  # noqa: E402
from edgekit.models import open_source  # noqa: E402
from edgekit.recipes import Recipe  # noqa: E402

import tinymodels  # noqa: E402

pytestmark = pytest.mark.slow


def convert(model_path: Path, out_dir: Path, calibration=None):
    backend = backends.get("tflm")
    source = open_source(model_path)
    target = targets.get("nucleo-l4r5zi")
    recipe = Recipe(source.sha256, "tflm", "int8", target_options=backend.recipe_options(target))
    out_dir.mkdir(parents=True)
    result = backend.convert(source, recipe, target, calibration, out_dir)
    artifact = Artifact(
        path=out_dir, backend="tflm", recipe=recipe.to_json(), recipe_key=recipe.key(),
        primary=result.primary, inputs=result.inputs, outputs=result.outputs,
        files=sorted(p.name for p in out_dir.iterdir()), sha256="", info=result.info,
    )
    return artifact, backend.load(artifact, target, RunOptions())


def quantize(x: np.ndarray, spec) -> np.ndarray:
    return np.clip(np.round(x / spec.scale + spec.zero_point), -128, 127).astype(np.int8)


def train_mnist_cnn(x, y, seed=0):
    import tf_keras as keras

    keras.utils.set_random_seed(seed)
    layers = keras.layers
    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1), batch_size=None),
        layers.Conv2D(8, 3, strides=2, activation="relu"),
        layers.DepthwiseConv2D(3, activation="relu"),
        layers.Conv2D(16, 1, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(10),
        layers.Softmax(),
    ])
    model.compile(optimizer=keras.optimizers.Adam(0.005), loss="sparse_categorical_crossentropy")
    model.fit(x, y, epochs=3, batch_size=64, verbose=0, shuffle=False)
    return model


def test_mnist_int8_cnn_top1_on_tflm_equals_litert(tmp_path):
    from edgekit import datasets

    data = datasets.load("mnist5k")
    model = train_mnist_cnn(data.x_train, data.y_train)
    int8 = tinymodels.to_tflite(model, quantize="int8", calibration=data.calibration(200))
    model_path = tmp_path / "mnist_cnn.tflite"
    model_path.write_bytes(int8)
    artifact, tflm = convert(model_path, tmp_path / "artifact")
    litert = LiteRTRunner(artifact.primary_path)
    (spec,) = tflm.inputs
    (out,) = tflm.outputs
    ours, theirs = [], []
    for x in data.x_test:
        q = quantize(x, spec)[None]
        ours.append(int(np.argmax(tflm.infer({spec.name: q})[out.name])))
        theirs.append(int(np.argmax(litert.infer({spec.name: q})[out.name])))
    ours, theirs = np.array(ours), np.array(theirs)
    accuracy_tflm = float(np.mean(ours == data.y_test))
    accuracy_litert = float(np.mean(theirs == data.y_test))
    assert accuracy_tflm > 0.85  # a trained model, not noise
    assert accuracy_tflm == accuracy_litert
    assert np.mean(ours == theirs) >= 0.998


# source model, its published int8 and float32 versions
MLPERF_SOURCES = {
    "kws_ref_savedmodel": ("kws_ref_model.tflite", "kws_ref_model_float32.tflite"),
    "ad01.h5": ("ad01_int8.tflite", "ad01_fp32.tflite"),
    "pretrainedResnet.h5": ("pretrainedResnet_quant.tflite", "pretrainedResnet.tflite"),
}


def calibration_in_reference_range(int8_reference: Path, count: int, seed: int) -> np.ndarray:
    """No MLPerf data ships with the models: uniform samples over the real-value range that the
    published int8 model's input quantization covers (the range its authors calibrated)."""
    model = validate_file(int8_reference)
    tensor = model.tensor(model.inputs[0])
    scale, zero = float(tensor.quantization.scale[0]), int(tensor.quantization.zero_point[0])
    low, high = scale * (-128 - zero), scale * (127 - zero)
    rng = np.random.default_rng(seed)
    return rng.uniform(low, high, size=(count, *tensor.shape[1:])).astype(np.float32)


@pytest.mark.parametrize("source_name", sorted(MLPERF_SOURCES))
def test_mlperf_source_model_is_quantized_and_runs(mlperf_dir, tmp_path, source_name):
    reference_int8, reference_float = (mlperf_dir / n for n in MLPERF_SOURCES[source_name])
    calibration = calibration_in_reference_range(reference_int8, 64, seed=0)
    artifact, tflm = convert(mlperf_dir / source_name, tmp_path / "artifact", calibration)
    assert artifact.info["calibration_samples"]["samples"] == 64
    assert [s.dtype for s in artifact.inputs + artifact.outputs] == ["int8", "int8"]
    # the same operator set as the published int8 model
    assert set(artifact.info["ops"]) == set(validate_file(reference_int8).ops_used())
    assert artifact.info["fit"]["fits"]
    float_runner = LiteRTRunner(reference_float)
    (spec,), (out,) = tflm.inputs, tflm.outputs
    inputs = calibration_in_reference_range(reference_int8, 40, seed=1)
    agree = 0
    for x in inputs:
        y = tflm.infer({spec.name: quantize(x, spec)[None]})[out.name]
        f = next(iter(float_runner.infer({float_runner.inputs[0].name: x[None]}).values()))
        agree += int(np.argmax(y) == np.argmax(f))
    # noise inputs, not data: the int8 model still follows the float one most of the time
    assert agree >= 28, f"{agree}/40"
