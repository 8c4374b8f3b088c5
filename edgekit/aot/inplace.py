"""How far ahead of an input an operator's output may start and still be written over it.

A kernel that writes its output in steps, each step only after reading
everything that step needs, may write over an input that dies at the
operator, as long as no write lands on input bytes a later step has still to
read. With the output starting `lag` bytes before the input, that holds when,
after every step s,

    written_end[s] <= lag + read_start[s + 1:]

where `written_end[s]` is where the output written so far ends (bytes from
the output's start) and `read_start` is the first input byte a step reads
(bytes from the input's start). The smallest such lag is what an emitter's
`overwrites` reports; the planner then places the output at least that far
before the input, or clear of it.

Two step patterns cover the kernels that take part:

- element by element (ADD, MUL, QUANTIZE, LOGISTIC): element i of the output
  is written after element i of the input is read;
- pixel by pixel (the int8 convolution and depthwise kernels, ek_conv.h):
  output pixels are computed in increasing order, a group at a time, and a
  group's pixels are written only after all their windows have been read.
  Every pixel boundary is taken as a possible end of a group, so the lag
  holds whatever group size a kernel path uses.
"""

from __future__ import annotations

import numpy as np


def lag(written_end: np.ndarray, read_start: np.ndarray) -> int:
    """The smallest lag for steps with these ends of output written and starts of input read.

    `read_start[s]` may be `inf` for a step that reads no input (a window
    entirely in the padding).
    """
    written_end = np.asarray(written_end, dtype=np.float64)
    read_start = np.asarray(read_start, dtype=np.float64)
    if len(written_end) < 2:
        return 0
    # the first input byte any later step still reads
    later = np.minimum.accumulate(read_start[::-1])[::-1][1:]
    need = written_end[:-1] - later
    return max(0, int(np.max(need))) if np.isfinite(need).any() else 0


def elementwise_lag(count: int, in_itemsize: int, out_itemsize: int) -> int:
    """Lag of an element-by-element kernel over `count` elements."""
    steps = np.arange(count, dtype=np.int64)
    return lag((steps + 1) * out_itemsize, steps * in_itemsize)


def window_lag(
    batches: int, in_h: int, in_w: int, in_c: int, out_h: int, out_w: int, out_c: int,
    k_h: int, k_w: int, stride_h: int, stride_w: int, dil_h: int, dil_w: int, pad_h: int, pad_w: int,
    itemsize: int = 1,
) -> int:  # fmt: skip
    """Lag of a pixel-by-pixel window kernel over NHWC tensors (input and output of one dtype).

    A pixel's first input byte read is that of its window's first row and
    first column inside the image; taps in the padding read no input.
    """

    def first_inside(out_size: int, stride: int, pad: int, k: int, dil: int, in_size: int) -> np.ndarray:
        start = np.arange(out_size) * stride - pad
        taps = start[:, None] + dil * np.arange(k)[None, :]
        inside = (taps >= 0) & (taps < in_size)
        first = np.where(inside.any(axis=1), taps[np.arange(out_size), inside.argmax(axis=1)], -1)
        return first  # -1: no tap of this row (column) inside the image

    ys = first_inside(out_h, stride_h, pad_h, k_h, dil_h, in_h)
    xs = first_inside(out_w, stride_w, pad_w, k_w, dil_w, in_w)
    pixel = (ys[:, None] * in_w + xs[None, :]).astype(np.float64)
    pixel[(ys[:, None] < 0) | (xs[None, :] < 0)] = np.inf
    per_batch = np.arange(batches)[:, None] * (in_h * in_w)
    read_start = ((per_batch + pixel.reshape(1, -1)) * in_c * itemsize).reshape(-1)
    written_end = (np.arange(batches * out_h * out_w, dtype=np.int64) + 1) * out_c * itemsize
    return lag(written_end, read_start)
