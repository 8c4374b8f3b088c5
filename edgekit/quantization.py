"""Which quantization a conversion uses, and which calibration samples."""

from __future__ import annotations

from edgekit import datasets, targets
from edgekit.backends.base import Backend
from edgekit.errors import EdgekitError
from edgekit.models import SourceModel


def choose_quantization(backend: Backend, target: targets.Target, asked: str | None, source: SourceModel) -> str:
    """The quantization to convert with: what the user asked, else the target's default.

    A full-integer .tflite already is int8 and is taken as it is: its
    quantization is the file's, not the target's default.
    """
    if source.format == "tflite":
        from edgekit.backends.tflite import is_full_int8

        inherent = "int8" if is_full_int8(source.path) else "none"
        if inherent not in backend.quantizations and inherent == "none":
            raise EdgekitError(
                f"{source.path} is a float .tflite and backend {backend.name} runs int8 models only: "
                "give the source model (.keras, .h5 or SavedModel) with --calibration, or a full-integer .tflite"
            )
        if asked not in (None, inherent):
            raise EdgekitError(
                f"{source.path} is a {'full-integer int8' if inherent == 'int8' else 'float'} .tflite, "
                f"which cannot be converted to --quantize {asked}: give the source model "
                "(.keras, .h5 or SavedModel), or leave --quantize out"
            )
        return inherent
    if asked is None:
        # the target's default where the backend has it, else the backend's first
        return target.quantization if target.quantization in backend.quantizations else backend.quantizations[0]
    if asked not in backend.quantizations:
        raise EdgekitError(
            f"backend {backend.name} does not support --quantize {asked}: choose one of "
            f"{', '.join(backend.quantizations)}"
        )
    return asked


def calibration_for(source: SourceModel, quantization: str, spec: str | None):
    """The calibration samples and their identity; only int8 needs them."""
    if quantization != "int8":
        return None, None, None
    spec = spec or source.dataset
    if spec is None:
        return None, None, None
    data = datasets.load(spec)
    return data.calibration(), data.sha256, data.name
