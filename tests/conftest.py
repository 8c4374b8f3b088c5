"""Shared test fixtures: one registry per test session, the MLPerf Tiny models when present, a loopback sshd."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MLPERF_DIR = Path(
    os.environ.get("EDGEKIT_MLPERF_DIR", REPO.parent / "shared" / "models" / "mlperf-tiny")
)


@pytest.fixture(scope="session", autouse=True)
def session_registry(tmp_path_factory):
    """One registry folder for the whole session: creating an MLflow database takes seconds."""
    folder = tmp_path_factory.mktemp("registry")
    previous = os.environ.get("EDGEKIT_REGISTRY")
    os.environ["EDGEKIT_REGISTRY"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("EDGEKIT_REGISTRY", None)
    else:
        os.environ["EDGEKIT_REGISTRY"] = previous


@pytest.fixture(scope="session")
def mlperf_dir() -> Path:
    """The MLPerf Tiny reference models; tests that need them skip when the folder is absent."""
    if not (MLPERF_DIR / "kws_ref_model.tflite").is_file():
        pytest.skip(f"MLPerf Tiny models not found at {MLPERF_DIR} (set EDGEKIT_MLPERF_DIR)")
    return MLPERF_DIR


def _trained_cnn(path: Path, dataset: str, shape, conv_layers, seed: int, learning_rate: float, epochs: int, batch: int) -> Path:
    """A small seeded CNN trained on a data set's training split, saved at `path` (.keras)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from edgekit.sources.tensorflow import load_tensorflow

    load_tensorflow()
    import tf_keras as keras

    from edgekit import datasets

    keras.utils.set_random_seed(seed)
    data = datasets.load(dataset)
    model = keras.Sequential(
        [keras.layers.Input(shape), *conv_layers(keras.layers), keras.layers.Flatten(),
         keras.layers.Dense(10, activation="softmax")]
    )
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy")
    model.fit(data.x_train, data.y_train, epochs=epochs, batch_size=batch, verbose=0)
    model.save(path)
    return path


@pytest.fixture(scope="session")
def digits_model(tmp_path_factory) -> Path:
    """A small CNN trained on the digits training split (seeded, a few seconds), saved as .keras."""
    return _trained_cnn(
        tmp_path_factory.mktemp("models") / "digits_cnn.keras", "digits", (8, 8, 1),
        lambda layers: [layers.Conv2D(8, 3, activation="relu")], seed=7, learning_rate=1e-2, epochs=8, batch=64,
    )


@pytest.fixture(scope="session")
def mnist_cnn(tmp_path_factory) -> Path:
    """A small CNN trained on the mnist5k training split (seeded, one epoch), saved as .keras."""
    return _trained_cnn(
        tmp_path_factory.mktemp("models") / "mnist_cnn.keras", "mnist5k", (28, 28, 1),
        lambda layers: [layers.Conv2D(8, 3, activation="relu"), layers.MaxPooling2D(),
                        layers.Conv2D(16, 3, activation="relu"), layers.MaxPooling2D()],
        seed=11, learning_rate=3e-3, epochs=1, batch=32,
    )


@pytest.fixture(scope="session")
def loopback_sshd(tmp_path_factory):
    """One real OpenSSH server on 127.0.0.1 for the session (tests/sshd.py); skips where sshd is missing."""
    import sshd

    why = sshd.missing()
    if why:
        pytest.skip(why)
    server = sshd.LoopbackSshd(tmp_path_factory.mktemp("sshd"))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def device_python(request, tmp_path_factory):
    """device_python(runtime) -> the python of a venv with only numpy and that runtime (built once, cached)."""
    import sshd

    cache = getattr(request.config, "cache", None)  # absent under -p no:cacheprovider: build per session
    folder = Path(cache.mkdir("edgekit-device-venvs")) if cache else tmp_path_factory.mktemp("device-venvs")
    packages = {"onnxruntime": "onnxruntime", "litert": "ai-edge-litert"}

    def make(runtime: str) -> Path:
        python, why = sshd.device_venv(folder / runtime, ["numpy", packages[runtime]])
        if python is None:
            pytest.skip(f"cannot build the device's virtual environment: {why}")
        return python

    return make
