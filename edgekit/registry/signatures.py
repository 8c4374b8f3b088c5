"""Cheap checks that a model file is what its suffix says, before it enters the registry.

`detect_format` goes by suffix and size; registering a file that is not a
model would only fail later, at the first conversion, far from the mistake.
These checks read a few bytes (a zip's directory at most), never the model:
a .tflite carries the FlatBuffer identifier `TFL3` and a root offset inside
the file, an HDF5 file its signature, a Keras v3 file is a zip archive.
ONNX and SavedModel protobufs have no signature and pass unchecked.
"""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

from edgekit.errors import InvalidModelError

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def check_signature(path: Path, fmt: str) -> None:
    """Raise InvalidModelError if `path` (a file of format `fmt`) is clearly not such a file."""
    path = Path(path)
    if path.is_dir():
        return
    if fmt == "tflite":
        ok, what = _is_tflite(path), "a TensorFlow Lite model (no TFL3 identifier, or truncated)"
    elif fmt == "keras":
        ok = zipfile.is_zipfile(path) or _is_hdf5(path)
        what = "a Keras model (neither a complete .keras archive nor an HDF5 file)"
    else:
        return
    if not ok:
        raise InvalidModelError(f"{path} is not {what}: give the file as saved by the framework")


def _is_tflite(path: Path) -> bool:
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(8)
    if len(head) < 8 or head[4:8] != b"TFL3":
        return False
    (root,) = struct.unpack("<I", head[:4])
    return 8 <= root < size


def _is_hdf5(path: Path) -> bool:
    # the superblock sits at 0, or after a user block at 512, 1024, 2048, ...
    size = path.stat().st_size
    with open(path, "rb") as f:
        offset = 0
        while offset + len(HDF5_SIGNATURE) <= size:
            f.seek(offset)
            if f.read(len(HDF5_SIGNATURE)) == HDF5_SIGNATURE:
                return True
            offset = 512 if offset == 0 else offset * 2
    return False
