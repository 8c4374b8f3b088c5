"""Per-channel parameters of the `--optimize size` convolutions: the raw bias and one word.

A per-channel int8 convolution elsewhere stores, for each output channel,
the folded bias (bias + input_offset * sum of the channel's weights) and the
requantization (a 31-bit multiplier and a shift): 12 bytes a channel, which
is 19% of KWS's weights. The compact kernels (kernels/ek_compact.h)
accumulate as TFLM does, from the raw bias and the input offset, so they
need only:

- the raw bias, int16 when every bias of the layer fits (as in the shared
  models), else int32;
- one word for the requantization: QuantizeMultiplier's multiplier always
  lies in [2^30, 2^31) (or is 0), so its top two bits are free to hold the
  channel's shift less the layer's smallest. A layer whose shifts span more
  than four values, or with a zero multiplier, stores the multiplier as it is
  and the shifts beside it as int8.

That is 6 bytes a channel instead of 12 (7 in the second case).
"""

from __future__ import annotations

import numpy as np

from edgekit.aot.codegen import compact_kernels
from edgekit.aot.ops.base import EmitContext

#: the multiplier's bit that is always set, and the bits below it that are stored
MULTIPLIER_TOP = 1 << 30
MULTIPLIER_LOW = MULTIPLIER_TOP - 1
#: how many shifts the two free bits distinguish
SHIFT_SPAN = 4


def applies(ctx: EmitContext) -> bool:
    """Whether the node's bundle takes the compact kernels (codegen.compact_kernels)."""
    return compact_kernels(ctx.optimize, ctx.features)


def packable(mults: np.ndarray, shifts: np.ndarray) -> bool:
    """Whether every multiplier has bit 30 set and the shifts span at most SHIFT_SPAN values."""
    mults = np.asarray(mults, dtype=np.int64).reshape(-1)
    shifts = np.asarray(shifts, dtype=np.int64).reshape(-1)
    return bool(np.all(mults >= MULTIPLIER_TOP) and np.all(mults < 2 * MULTIPLIER_TOP)
                and shifts.max() - shifts.min() < SHIFT_SPAN)  # fmt: skip


def pack_words(mults: np.ndarray, shifts: np.ndarray) -> tuple[np.ndarray, int]:
    """(one uint32 per channel, the layer's smallest shift): the multiplier's low 30 bits under
    the channel's shift less the smallest."""
    mults = np.asarray(mults, dtype=np.int64).reshape(-1)
    shifts = np.asarray(shifts, dtype=np.int64).reshape(-1)
    base = int(shifts.min())
    words = (mults & MULTIPLIER_LOW) | ((shifts - base) << 30)
    return words.astype(np.uint32), base


def unpack_words(words: np.ndarray, base: int) -> tuple[np.ndarray, np.ndarray]:
    """pack_words undone, as ek_requant_word does it (for tests)."""
    words = np.asarray(words, dtype=np.int64)
    return (words & MULTIPLIER_LOW) | MULTIPLIER_TOP, base + (words >> 30)


def arrays(ctx: EmitContext, hint: str, raw_bias: np.ndarray, mults: np.ndarray, shifts: np.ndarray) -> list:
    """The compact kernels' `bias16, bias32, words, shifts, shift_base` arguments (one bias
    pointer null; `shifts` null where the words hold them)."""
    bias = np.asarray(raw_bias, dtype=np.int64).reshape(-1)
    if np.all(np.abs(bias) < 2**15):
        biases = [ctx.const_array(bias.astype(np.int16), f"{hint}_bias"), "(const int32_t *)0"]
    else:
        biases = ["(const int16_t *)0", ctx.const_array(bias.astype(np.int32), f"{hint}_bias")]
    if packable(mults, shifts):
        words, base = pack_words(mults, shifts)
        return [*biases, ctx.const_array(words, f"{hint}_words"), "(const int8_t *)0", base]
    words = np.asarray(mults, dtype=np.int64).reshape(-1).astype(np.uint32)
    return [*biases, ctx.const_array(words, f"{hint}_words"),
            ctx.const_array(np.asarray(shifts, dtype=np.int8), f"{hint}_shifts"), 0]  # fmt: skip
