"""The one place that decides a conversion's quantization and its calibration set.

`decide` runs before the conversion cache is asked (so it imports no
framework) and owns every error about either: a quantization the backend
lacks, a .tflite asked to change the quantization it was converted with, an
int8-only backend given a float .tflite, and int8 from a float model without
calibration data. Backends receive the decision (the recipe's quantization
and the calibration samples) and do not check it again.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgekit import datasets
from edgekit.backends.base import Backend
from edgekit.errors import EdgekitError
from edgekit.models import SourceModel
from edgekit.sources import loader_for
from edgekit.targets import Target

#: representative samples TFLiteConverter calibrates int8 on: the first of the training split
CALIBRATION_SAMPLES = 200


@dataclass(frozen=True)
class Calibration:
    """The samples an int8 conversion is calibrated on, and the data set they come from."""

    name: str
    sha256: str
    samples: np.ndarray


@dataclass(frozen=True)
class Decision:
    """A quantization, and the calibration set when the conversion calibrates (int8 from float)."""

    quantization: str
    calibration: Calibration | None = None

    @property
    def samples(self) -> np.ndarray | None:
        return None if self.calibration is None else self.calibration.samples

    @property
    def calibration_name(self) -> str | None:
        return None if self.calibration is None else self.calibration.name

    @property
    def calibration_sha256(self) -> str | None:
        return None if self.calibration is None else self.calibration.sha256


def decide(
    backend: Backend, target: Target, asked: str | None, source: SourceModel, calibration_spec: str | None
) -> Decision:
    """The quantization to convert `source` with for `backend` on `target`, and what to calibrate on.

    `asked` is the user's --quantize (None: the target's default where the
    backend has it, else the backend's first). `calibration_spec` is the
    user's --calibration (None: the data set the model was registered with).
    A converted source (.tflite) keeps the quantization it has, byte for byte.
    """
    fixed = loader_for(source).fixed_quantization()
    if fixed is not None:
        return Decision(_keep(backend, asked, source, fixed))
    quantization = _choose(backend, target, asked)
    if quantization != "int8":
        return Decision(quantization)  # a calibration set given anyway is not part of the recipe
    spec = calibration_spec or source.dataset
    if spec is None:
        others = [q for q in backend.quantizations if q != "int8"]
        raise EdgekitError(
            f"int8 quantization of {source.ref} needs calibration data: pass --calibration "
            "digits|mnist5k|FILE.npz, or register the model with --dataset"
            + (f", or convert with --quantize {' or '.join(others)}" if others else "")
        )
    data = datasets.load(spec)
    return Decision(quantization, Calibration(data.name, data.sha256, data.calibration(CALIBRATION_SAMPLES)))


def _keep(backend: Backend, asked: str | None, source: SourceModel, fixed: str) -> str:
    """A converted model's own quantization, when the backend and the user accept it."""
    if fixed not in backend.quantizations and fixed == "none":
        raise EdgekitError(
            f"{source.path} is a float .tflite and backend {backend.name} runs int8 models only: "
            "give the source model (.keras, .h5 or SavedModel) with --calibration, or a full-integer .tflite"
        )
    if asked not in (None, fixed):
        raise EdgekitError(
            f"{source.path} is a {'full-integer int8' if fixed == 'int8' else 'float'} .tflite, "
            f"which cannot be converted to --quantize {asked}: give the source model "
            "(.keras, .h5 or SavedModel), or leave --quantize out"
        )
    return fixed


def _choose(backend: Backend, target: Target, asked: str | None) -> str:
    if asked is None:
        return target.quantization if target.quantization in backend.quantizations else backend.quantizations[0]
    if asked not in backend.quantizations:
        raise EdgekitError(
            f"backend {backend.name} does not support --quantize {asked}: choose one of "
            f"{', '.join(backend.quantizations)}"
        )
    return asked
