"""Compile-time quantization arithmetic, matching TFLM's float64 code bit for bit.

The generated C only does integer arithmetic; every multiplier and shift it
needs is computed here, exactly as TFLM computes it at `Prepare` time
(tensorflow/lite/kernels/internal/quantization_util.cc), so the integer
results agree with the TFLM reference kernels.
"""

from __future__ import annotations

import math

import numpy as np

INT8_MIN, INT8_MAX = -128, 127


def tflite_round(x: float) -> float:
    """std::round: halves away from zero (Python's round() goes to even)."""
    return math.copysign(math.floor(abs(x) + 0.5), x)


def quantize_multiplier(real: float, single_rounding: bool = False) -> tuple[int, int]:
    """TFLM `QuantizeMultiplier`: real ~= multiplier * 2**(shift - 31).

    `shift` is a left shift (negative: right). With `single_rounding`
    (TFLITE_SINGLE_ROUNDING builds) a shift above 30 saturates as TFLM does.
    """
    real = float(real)
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    q_fixed = int(tflite_round(q * (1 << 31)))
    if q_fixed > (1 << 31):
        raise ValueError(f"multiplier {real} out of range")
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift, q_fixed = 0, 0
    if single_rounding and shift > 30:
        shift, q_fixed = 30, (1 << 31) - 1
    return q_fixed, shift


def quantize_multiplier_smaller_than_one(real: float, single_rounding: bool = False):
    """TFLM `QuantizeMultiplierSmallerThanOneExp` (the shift is <= 0)."""
    if not 0.0 < real < 1.0:
        raise ValueError(f"multiplier {real} is not in (0, 1)")
    return quantize_multiplier(real, single_rounding)


def multiply_by_quantized_multiplier_smaller_than_one(x: int, multiplier: int, shift: int, single_rounding: bool = False) -> int:
    """TFLM MultiplyByQuantizedMultiplierSmallerThanOneExp (shift <= 0) on an int32, in Python:
    the C kernels' ek_mbqm_smaller_than_one, for tables computed at compile time."""
    from edgekit.aot.fixedpoint import rdbpot, srdhm

    if single_rounding:
        total = 31 - shift
        return (x * multiplier + (1 << (total - 1))) >> total
    return rdbpot(srdhm(x, multiplier), -shift)


def conv_multipliers(
    input_scale: float,
    filter_scales: np.ndarray,
    output_scale: float,
    channels: int,
    single_rounding: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-output-channel (multiplier, shift) as TFLM's PopulateConvolutionQuantizationParams.

    effective = double(input_scale) * double(filter_scale[c]) / double(output_scale);
    a per-tensor filter scale is broadcast to every channel.
    """
    scales = np.asarray(filter_scales, dtype=np.float32).reshape(-1)
    if scales.size == 1:
        scales = np.repeat(scales, channels)
    mults = np.zeros(channels, dtype=np.int32)
    shifts = np.zeros(channels, dtype=np.int32)
    for c in range(channels):
        effective = float(np.float32(input_scale)) * float(scales[c]) / float(np.float32(output_scale))
        mults[c], shifts[c] = quantize_multiplier(effective, single_rounding)
    return mults, shifts


def activation_range_int8(
    activation: str, scale: float, zero_point: int, qmin: int = INT8_MIN, qmax: int = INT8_MAX
) -> tuple[int, int]:
    """TFLM `CalculateActivationRangeQuantized` for a fused activation on an integer output."""
    scale = float(np.float32(scale))

    def quantize(value: float) -> int:
        # TfLiteRound(f / scale) in float, as the kernel_util code does (float division)
        return int(zero_point) + int(tflite_round(float(np.float32(value) / np.float32(scale))))

    if activation in (None, "NONE"):
        return qmin, qmax
    if activation == "RELU":
        return max(qmin, quantize(0.0)), qmax
    if activation == "RELU6":
        return max(qmin, quantize(0.0)), min(qmax, quantize(6.0))
    if activation == "RELU_N1_TO_1":
        return max(qmin, quantize(-1.0)), min(qmax, quantize(1.0))
    raise ValueError(f"fused activation {activation} is not supported")


def activation_range_float(activation: str) -> tuple[float, float]:
    """TFLM `CalculateActivationRange` for float outputs."""
    inf = float("inf")
    return {
        None: (-inf, inf),
        "NONE": (-inf, inf),
        "RELU": (0.0, inf),
        "RELU6": (0.0, 6.0),
        "RELU_N1_TO_1": (-1.0, 1.0),
    }[activation]
