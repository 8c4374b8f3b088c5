"""Import heavy optional dependencies only where they are needed.

`edgekit --help` and the cache lookup must stay fast, so TensorFlow, MLflow,
onnxruntime and friends are imported through `require` inside the code that
uses them, and a missing one becomes a clear error naming the extra.
"""

import importlib
from importlib import metadata

from edgekit.errors import MissingDependencyError


def require(module: str, extra: str):
    """Import `module`, or raise MissingDependencyError naming `edgekit[extra]`."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing = getattr(exc, "name", None) or module
        if missing.split(".")[0] != module.split(".")[0]:
            raise  # the module exists but is broken: that is a bug, keep the traceback
        raise MissingDependencyError(module, extra) from None


def version_of(distribution: str) -> str | None:
    """The installed version of a distribution, without importing it (None if absent)."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None
