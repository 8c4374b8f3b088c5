"""Runners on the source model itself: the reference that fidelity is measured against.

A converted model is judged by how far its outputs move from the source
model's own outputs on the same inputs (Polygraphy's comparator idea).
"""

from __future__ import annotations

from edgekit.core import Runner
from edgekit.models import SourceModel


def source_runner(source: SourceModel) -> Runner:
    """A runner on the source model, in the framework it was written in."""
    if source.format == "keras":
        from edgekit.sources.keras import KerasRunner

        return KerasRunner(source.path)
    if source.format == "savedmodel":
        from edgekit.sources.savedmodel import SavedModelRunner

        return SavedModelRunner(source.path)
    if source.format == "onnx":
        from edgekit.backends.onnx import OnnxRuntimeRunner

        return OnnxRuntimeRunner(source.path)
    from edgekit.backends.tflite import LiteRTRunner

    return LiteRTRunner(source.path)
