"""Source models: what a user registers or converts, and how edgekit recognises them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgekit.errors import InvalidModelError
from edgekit.hashing import sha256_tree

FORMATS = ("keras", "savedmodel", "onnx", "tflite")
_SUFFIXES = {".keras": "keras", ".h5": "keras", ".hdf5": "keras", ".onnx": "onnx", ".tflite": "tflite"}


@dataclass(frozen=True)
class SourceModel:
    """A source model on disk, with where it came from in the registry (if it did)."""

    path: Path
    format: str
    sha256: str
    name: str
    version: str | None = None
    dataset: str | None = None

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}" if self.version else str(self.path)


def detect_format(path: Path) -> str:
    """The format of a model file or folder, or InvalidModelError saying what is accepted."""
    path = Path(path)
    if not path.exists():
        raise InvalidModelError(f"model file not found: {path}")
    if path.is_dir():
        if (path / "saved_model.pb").is_file() or (path / "saved_model.pbtxt").is_file():
            return "savedmodel"
        raise InvalidModelError(
            f"{path} is a folder without saved_model.pb: give a SavedModel folder or a model file"
        )
    fmt = _SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise InvalidModelError(
            f"{path}: unknown model format '{path.suffix}': "
            "give .keras, .h5, .onnx, .tflite or a SavedModel folder"
        )
    if path.stat().st_size == 0:
        raise InvalidModelError(f"{path} is empty: give a complete model file")
    return fmt


def open_source(path: Path, dataset: str | None = None) -> SourceModel:
    """A model file given on the command line (not from the registry)."""
    path = Path(path)
    fmt = detect_format(path)
    return SourceModel(path=path, format=fmt, sha256=sha256_tree(path), name=path.stem, dataset=dataset)
