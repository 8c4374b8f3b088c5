"""Tiny deterministic test models, converted to .tflite bytes.

Shared by the tests of several modules. Weights come from a seeded numpy
generator (not from TensorFlow's initialisers), so the same seed gives the
same bytes on every run. Converting costs a second or two, so results are
memoised per process.

TensorFlow is imported inside the functions: importing this module is cheap.
"""

from __future__ import annotations

import numpy as np

_CACHE: dict[tuple, bytes] = {}


def _seeded_weights(model, seed: int) -> None:
    """Overwrite every weight with small values from a seeded generator."""
    rng = np.random.default_rng(seed)
    weights = []
    for w in model.get_weights():
        fan_in = max(1, int(np.prod(w.shape[:-1]))) if w.ndim > 1 else 1
        scale = 0.1 if w.ndim == 1 else 1.0 / np.sqrt(fan_in)
        weights.append((rng.standard_normal(w.shape) * scale).astype(np.float32))
    model.set_weights(weights)


def calibration_data(input_shape, count: int = 16, seed: int = 0) -> np.ndarray:
    """Deterministic float32 samples in [-1, 1) with a leading batch axis."""
    rng = np.random.default_rng(seed + 1000)
    return rng.uniform(-1.0, 1.0, size=(count, *input_shape)).astype(np.float32)


def to_tflite(keras_model, *, quantize: str = "none", calibration: np.ndarray | None = None) -> bytes:
    """Convert a Keras model to .tflite bytes.

    quantize="none": float32 everywhere. quantize="int8": full-integer model
    (int8 input and output, per-channel weights) calibrated on `calibration`
    (samples with a leading batch axis; default: 16 seeded uniform samples).
    """
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    if quantize == "int8":
        if calibration is None:
            calibration = calibration_data(tuple(keras_model.input_shape[1:]))
        samples = np.asarray(calibration, dtype=np.float32)

        def representative():
            for sample in samples:
                yield [sample[None, ...]]

        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    elif quantize != "none":
        raise ValueError(f"quantize must be 'none' or 'int8', not {quantize!r}")
    return bytes(converter.convert())


def tiny_cnn(input_shape=(8, 8, 1), classes: int = 4, seed: int = 0):
    """A tf_keras model: conv, depthwise conv, average pool, dense, softmax."""
    import tf_keras as keras

    keras.utils.set_random_seed(seed)
    layers = keras.layers
    inputs = keras.Input(shape=tuple(input_shape), batch_size=1)
    x = layers.Conv2D(4, 3, padding="same", activation="relu", name="conv")(inputs)
    x = layers.DepthwiseConv2D(3, padding="same", activation="relu6", name="dwconv")(x)
    x = layers.AveragePooling2D(2, name="pool")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(classes, name="dense")(x)
    outputs = layers.Softmax(name="softmax")(x)
    model = keras.Model(inputs, outputs, name="tiny_cnn")
    _seeded_weights(model, seed)
    return model


def tiny_float_cnn_bytes(seed: int = 0) -> bytes:
    """tiny_cnn() as a float32 .tflite (memoised)."""
    key = ("tiny_cnn", "none", seed)
    if key not in _CACHE:
        _CACHE[key] = to_tflite(tiny_cnn(seed=seed))
    return _CACHE[key]


def tiny_int8_cnn_bytes(seed: int = 0) -> bytes:
    """tiny_cnn() as a full-integer int8 .tflite (memoised)."""
    key = ("tiny_cnn", "int8", seed)
    if key not in _CACHE:
        model = tiny_cnn(seed=seed)
        calibration = calibration_data(tuple(model.input_shape[1:]), seed=seed)
        _CACHE[key] = to_tflite(model, quantize="int8", calibration=calibration)
    return _CACHE[key]


def mixing_mlp(input_shape=(8, 8, 1), seed: int = 0):
    """A tf_keras MLP whose first layer, `mix`, averages the input pixels (plus a little noise).

    On data whose pixels move together (`correlated_data`) `mix` spans what the
    input spans; on data whose pixels cancel out (`cancelling_data`) it spans a
    tenth of that, while the input still spans all of it: calibrating on the
    latter leaves `mix`, and only `mix`, with a tenth of its range.
    """
    import tf_keras as keras

    keras.utils.set_random_seed(seed)
    layers = keras.layers
    inputs = keras.Input(shape=tuple(input_shape), batch_size=1)
    x = layers.Flatten(name="flatten")(inputs)
    x = layers.Dense(8, name="mix")(x)
    x = layers.Dense(8, activation="relu", name="head")(x)
    outputs = layers.Dense(4, name="logits")(x)
    model = keras.Model(inputs, outputs, name="mixing_mlp")
    _seeded_weights(model, seed)
    rng = np.random.default_rng(seed + 1)
    n = int(np.prod(input_shape))
    weights, bias = model.get_layer("mix").get_weights()
    averaging = (1.0 + 0.1 * rng.standard_normal(weights.shape)) / n
    model.get_layer("mix").set_weights([averaging.astype(np.float32), np.zeros_like(bias)])
    return model


def correlated_data(input_shape=(8, 8, 1), count: int = 64, seed: int = 0) -> np.ndarray:
    """Samples whose pixels share one level in [-1, 1), plus small noise."""
    rng = np.random.default_rng(seed + 2000)
    level = rng.uniform(-1.0, 1.0, size=(count, *[1] * len(input_shape)))
    noise = 0.05 * rng.standard_normal((count, *input_shape))
    return np.clip(level + noise, -1.0, 1.0).astype(np.float32)


def cancelling_data(input_shape=(8, 8, 1), count: int = 64, seed: int = 0) -> np.ndarray:
    """Samples that span the input's [-1, 1] but whose pixel average spans a tenth of that:
    a checkerboard of +-0.9 on top of a shared level in [-0.1, 0.1)."""
    rng = np.random.default_rng(seed + 3000)
    board = 0.9 * np.where(np.indices(input_shape).sum(axis=0) % 2 == 0, 1.0, -1.0)
    level = rng.uniform(-0.1, 0.1, size=(count, *[1] * len(input_shape)))
    return (board[None] + level).astype(np.float32)
