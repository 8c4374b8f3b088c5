"""Between float samples and a runner's tensors: int8 inputs in, int8 outputs back to float.

The harness, `predict` and the benchmark scripts feed float data to runners
whose inputs may be int8 with a scale and zero point; these two functions are
the one place that arithmetic lives.
"""

from __future__ import annotations

import numpy as np


def quantize_input(x: np.ndarray, spec) -> np.ndarray:
    """Float samples to what a runner's input takes (int8 with its scale and zero point)."""
    dtype = np.dtype(spec.dtype)
    if spec.quantized and dtype.kind in "iu":
        info = np.iinfo(dtype)
        q = np.round(x / spec.scale) + spec.zero_point
        return np.clip(q, info.min, info.max).astype(dtype)
    return x.astype(dtype)


def dequantize_output(y: np.ndarray, spec) -> np.ndarray:
    if spec.quantized and np.dtype(y.dtype).kind in "iu":
        return (y.astype(np.float32) - spec.zero_point) * np.float32(spec.scale)
    return y.astype(np.float32)
