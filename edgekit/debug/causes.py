"""Why a layer is off, where the numbers say so.

Clipping: an int8 tensor represents only `scale * ([-128, 127] - zero_point)`,
the range its calibration saw. Reference values beyond that range come out
clipped to its ends; when calibration data missed part of a layer's range
(too few or unrepresentative samples), this is where it shows.

Bit-exactness: the aot compiler's int8 code must give TFLM's integers
exactly. Comparing the two runtimes' integers operator by operator names the
first operator whose code computes something else.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgekit.debug.capture import Capture, Captured

#: a share of clipped values that is worth a line (below it: outliers, not a miscalibration)
CLIPPED_SHARE = 0.001
#: data that spans less than this share of the calibrated range wastes int8 resolution
NARROW_SHARE = 0.05


@dataclass(frozen=True)
class RangeCheck:
    calibrated: tuple[float, float]  # what the int8 tensor can represent
    observed: tuple[float, float]  # the reference values on the data
    clipped_share: float  # share of reference values beyond the calibrated range

    @property
    def clipped(self) -> bool:
        return self.clipped_share >= CLIPPED_SHARE

    @property
    def narrow(self) -> bool:
        span = self.calibrated[1] - self.calibrated[0]
        return span > 0 and (self.observed[1] - self.observed[0]) < NARROW_SHARE * span

    @property
    def any_clipped(self) -> bool:
        return self.clipped_share > 0

    def describe(self) -> str:
        cal = f"calibrated range [{self.calibrated[0]:.4g}, {self.calibrated[1]:.4g}]"
        seen = f"values on the data [{self.observed[0]:.4g}, {self.observed[1]:.4g}]"
        if self.clipped:
            return f"clipped: {self.clipped_share:.1%} of values lie outside the {cal} ({seen})"
        if self.narrow:
            return f"coarse: the {seen} use under {NARROW_SHARE:.0%} of the {cal}"
        return f"{cal}, {seen}"


def range_check(reference_real: np.ndarray, converted: Captured) -> RangeCheck | None:
    """The calibrated range of an int8 tensor against the reference's values (None if not int8)."""
    if not converted.quantized or converted.dtype not in ("int8", "uint8"):
        return None
    info = np.iinfo(converted.dtype)
    low = (info.min - converted.zero_point) * converted.scale
    high = (info.max - converted.zero_point) * converted.scale
    values = reference_real.reshape(-1)
    if values.size == 0:
        return None
    half_step = converted.scale / 2  # rounding, not clipping, within half a step of an end
    beyond = np.count_nonzero((values < low - half_step) | (values > high + half_step))
    return RangeCheck((float(low), float(high)), (float(values.min()), float(values.max())), beyond / values.size)


@dataclass(frozen=True)
class BitExactness:
    """aot against TFLM on the same int8 .tflite: the first operator whose integers differ."""

    compared: int  # operator outputs compared
    first: Captured | None  # the aot tensor of the first differing operator
    differing: int = 0  # values of it that differ
    total: int = 0
    max_lsb: int = 0  # largest difference, in units of the last bit

    @property
    def exact(self) -> bool:
        return self.first is None

    def describe(self) -> str:
        if self.exact:
            return f"bit-exact: the integers of all {self.compared} operator outputs equal TFLM's"
        t = self.first
        return (
            f"not bit-exact: operator {t.position} ({t.op}) is the first whose integers differ from TFLM's: "
            f"{self.differing} of {self.total} values, by up to {self.max_lsb} LSB (tensor {t.name})"
        )


def bit_exactness(candidate: Capture, interpreter: Capture) -> BitExactness:
    """Compare integer tensors by .tflite tensor index, in the candidate's execution order."""
    expected = {t.index: t for t in interpreter.tensors if t.index is not None}
    compared = 0
    for tensor in candidate.tensors:
        other = expected.get(tensor.index)
        if tensor.position < 0 or other is None or other.values.shape != tensor.values.shape:
            continue
        if tensor.values.dtype.kind not in "iu":
            continue  # a float tensor inside an int8 model (none in TFLM's kernels) has no LSB
        compared += 1
        a, b = tensor.values.astype(np.int64), other.values.astype(np.int64)
        differ = np.count_nonzero(a != b)
        if differ:
            return BitExactness(compared, tensor, int(differ), int(a.size), int(np.max(np.abs(a - b))))
    return BitExactness(compared, None)
