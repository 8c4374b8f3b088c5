"""What a runtime exposes of one model run: every intermediate tensor, in execution order.

Each runtime's capture module turns its own notion of a tensor (a Keras layer
output, a TFLite tensor index, an ONNX value name) into `Captured`, with the
values of every input sample stacked on a leading axis, raw (int8 stays
int8) and with the quantization that turns them back into real numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Captured:
    """One tensor as a runtime computed it on every sample.

    `position` is the producing operator's place in execution order (-1 for a
    model input); `index` is the tensor's index in a .tflite (None elsewhere).
    """

    name: str
    position: int
    op: str
    values: np.ndarray  # (samples, *tensor shape), raw dtype
    scale: float | None = None
    zero_point: int | None = None
    index: int | None = None

    @property
    def quantized(self) -> bool:
        return self.scale is not None

    @property
    def dtype(self) -> str:
        return self.values.dtype.name

    @property
    def per_sample_size(self) -> int:
        return int(np.prod(self.values.shape[1:], dtype=np.int64))

    def real(self) -> np.ndarray:
        """The values as real numbers, (samples, elements): quantization undone."""
        flat = self.values.reshape(len(self.values), -1)
        if self.quantized and flat.dtype.kind in "iu":
            return (flat.astype(np.float64) - self.zero_point) * self.scale
        return flat.astype(np.float64)

    def quantization_label(self) -> str:
        if self.quantized:
            return f"{self.dtype} s={self.scale:.3g} zp={self.zero_point}"
        return self.dtype


@dataclass
class Capture:
    """Every tensor one runtime exposed for a model, inputs first, then in execution order."""

    runtime: str
    tensors: list[Captured]
    inputs: list[str]  # names of the model inputs, in the model's order
    outputs: list[str]  # names of the model outputs, in the model's order
    notes: list[str] = field(default_factory=list)

    def by_name(self) -> dict[str, Captured]:
        return {t.name: t for t in self.tensors}


def stack(per_sample: list[np.ndarray]) -> np.ndarray:
    """Samples captured one run at a time, as one array with a leading sample axis."""
    return np.stack([np.asarray(v) for v in per_sample])


def per_tensor_quantization(quant) -> tuple[float | None, int | None]:
    """(scale, zero_point) of a per-tensor quantization, or (None, None).

    Per-channel quantization only occurs on constants (weights), which are not captured.
    """
    if quant is None or len(quant.scale) != 1:
        return None, None
    return float(quant.scale[0]), int(quant.zero_point[0])


def to_input(x: np.ndarray, dtype: str, scale: float | None, zero_point: int | None) -> np.ndarray:
    """A float sample as a model input of `dtype` takes it (quantized when it is int8)."""
    from edgekit.core import TensorSpec
    from edgekit.quantize_io import quantize_input

    spec = TensorSpec("input", tuple(x.shape), dtype, scale, zero_point)
    return np.ascontiguousarray(quantize_input(np.asarray(x, dtype=np.float32), spec))
