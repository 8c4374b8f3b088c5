"""Read and validate .tflite files without TensorFlow.

Interpreters trust the files they load: a tensor index past the tensor list,
a graph that reads a tensor nobody wrote or a zero quantization scale can
crash them or make them compute garbage. edgekit reads every .tflite here
first, checking every offset against the file and every index against the
list it points into, so a bad file becomes one InvalidModelError naming what
is wrong and where, and the interpreters and the AOT compiler only ever see
files that passed.
"""

from __future__ import annotations

from pathlib import Path

from edgekit.errors import InvalidModelError
from edgekit.tflite.flatbuf import MalformedError
from edgekit.tflite.model import Model, ModelCheckError
from edgekit.tflite.validate import CHECKS, build_model
from edgekit.tflite.walk import RawModel


def read_model(source: bytes | str | Path, *, name: str | None = None) -> Model:
    """Parse and validate a .tflite model (bytes or a path); InvalidModelError on anything wrong."""
    data, name = _load(source, name)
    raw = RawModel(name=name, data=data)
    for check in CHECKS:
        try:
            check(raw)
        except MalformedError as exc:
            raise ModelCheckError("structure", f"{name}: {exc}") from None
    return build_model(raw)


def validate_file(path) -> Model:
    """Validate a .tflite file before any interpreter loads it; returns the parsed model."""
    return read_model(Path(path))


def _load(source, name: str | None) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), name or "model"
    path = Path(source)
    label = name or path.name
    try:
        return path.read_bytes(), label
    except FileNotFoundError:
        raise InvalidModelError(f"model file not found: {path}") from None
    except IsADirectoryError:
        raise InvalidModelError(f"{path} is a folder: give a .tflite file") from None
    except OSError as exc:
        raise InvalidModelError(f"cannot read {path}: {exc.strerror or exc}") from None
