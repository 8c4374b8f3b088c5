"""How far one converted tensor is from its reference, and whether that is too far.

Computed over every value of every sample at once (ST's validate and
Polygraphy's comparator do the same): max abs error, cosine similarity and
relative L2 error, plus the growth of the relative error against the
previous layer, which tells a layer that adds error from one that only
passes it on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Tolerance:
    """A layer fails when its cosine is below `min_cosine`, or (if `atol`/`rtol` is given)
    when any value is off by more than `atol + rtol * |reference|` (numpy's allclose)."""

    min_cosine: float = 0.99
    atol: float | None = None
    rtol: float | None = None

    def describe(self) -> str:
        parts = [f"cosine >= {self.min_cosine:g}"]
        if self.atol is not None or self.rtol is not None:
            parts.append(f"|err| <= {self.atol or 0:g} + {self.rtol or 0:g}*|ref|")
        return ", ".join(parts)


@dataclass(frozen=True)
class Errors:
    max_abs: float
    cosine: float
    rel_l2: float
    outside_tolerance: int  # values beyond atol + rtol*|ref| (0 when neither is given)


def errors(reference: np.ndarray, converted: np.ndarray, tolerance: Tolerance) -> Errors:
    """Both (samples, elements) float64 arrays of real values."""
    ref, conv = reference.reshape(-1), converted.reshape(-1)
    diff = conv - ref
    ref_norm, conv_norm = float(np.linalg.norm(ref)), float(np.linalg.norm(conv))
    diff_norm = float(np.linalg.norm(diff))
    if ref_norm == 0 and conv_norm == 0:
        cosine = 1.0  # both all zero (a dead ReLU): identical
    elif ref_norm == 0 or conv_norm == 0:
        cosine = 0.0
    else:
        cosine = float(np.dot(ref, conv) / (ref_norm * conv_norm))
    if ref_norm > 0:
        rel_l2 = diff_norm / ref_norm
    else:
        rel_l2 = 0.0 if diff_norm == 0 else math.inf
    outside = 0
    if tolerance.atol is not None or tolerance.rtol is not None:
        bound = (tolerance.atol or 0.0) + (tolerance.rtol or 0.0) * np.abs(ref)
        outside = int(np.count_nonzero(np.abs(diff) > bound))
    return Errors(float(np.max(np.abs(diff))) if diff.size else 0.0, cosine, rel_l2, outside)


def fails(e: Errors, tolerance: Tolerance) -> bool:
    return e.cosine < tolerance.min_cosine or e.outside_tolerance > 0


def growth(previous_rel_l2: float | None, rel_l2: float) -> float | None:
    """How many times the relative error grew since the previous layer (None: nothing to compare)."""
    if previous_rel_l2 is None or previous_rel_l2 == 0 or not math.isfinite(previous_rel_l2):
        return None
    return rel_l2 / previous_rel_l2
