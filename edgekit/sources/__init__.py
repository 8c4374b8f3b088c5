"""Source models, loaded in the framework each was written in: one loader per format.

Every consumer of a source model opens it through `loader_for(source)`: the
reference runner that fidelity is judged against, the tflite backend's
converter (and through it tflm and aot) and the onnx backend's export. The
format is looked up here, once; no other module branches on it. Importing
this package imports no framework: each loader imports its own on first use.
"""

from __future__ import annotations

from edgekit.models import SourceModel
from edgekit.sources.base import SourceLoader
from edgekit.sources.keras import KerasLoader
from edgekit.sources.onnx import OnnxLoader
from edgekit.sources.savedmodel import SavedModelLoader
from edgekit.sources.tflite import TfliteLoader

LOADERS: dict[str, type[SourceLoader]] = {
    loader.format: loader for loader in (KerasLoader, SavedModelLoader, OnnxLoader, TfliteLoader)
}


def loader_for(source: SourceModel) -> SourceLoader:
    """The loader for `source`'s format (the model itself is loaded on first use)."""
    return LOADERS[source.format](source)
