"""Runners on the source model itself: the reference that fidelity is measured against.

A converted model is judged by how far its outputs move from the source
model's own outputs on the same inputs (Polygraphy's comparator idea).
"""

from __future__ import annotations

from edgekit.core import Runner
from edgekit.models import SourceModel
from edgekit.sources import loader_for


def source_runner(source: SourceModel) -> Runner:
    """A runner on the source model, in the framework it was written in."""
    return loader_for(source).reference_runner()
