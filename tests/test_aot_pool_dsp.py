"""AVERAGE_POOL_2D on the Cortex-M DSP path (16-bit lane sums, kernels/ek_pool.h): bit-exact with TFLM.

Windows of up to 255 taps of a multiple of four channels are summed four
channels per word in 16-bit lanes; others take the 32-bit loop. One model
holds both sides of each limit (255 and 256 taps; 8 and 6 channels) and
windows clipped by SAME padding (a count per pixel), run on the emulated
Cortex-M4 against the TFLM interpreter, saturating inputs included.
"""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.aot.ops.conv import compute_out_size
from tests.test_aot_builder import ModelBuilder, assert_bit_exact_on_emulated_cortex_m4, needs_emulator

#: (input h, w, channels), window, stride, padding
BRANCHES = [
    ((9, 9, 8), (5, 5), (2, 2), "SAME"),
    ((15, 17, 4), (15, 17), (1, 1), "VALID"),  # 255 taps: the lanes' limit
    ((16, 16, 4), (16, 16), (1, 1), "VALID"),  # 256 taps: the 32-bit loop
    ((7, 7, 6), (3, 3), (1, 1), "SAME"),  # 6 channels: the 32-bit loop
]


def _pools_model(seed: int = 1) -> bytes:
    rng = np.random.default_rng(seed)
    b = ModelBuilder()
    inputs, outputs = [], []
    for (h, w, c), k, s, pad in BRANCHES:
        scale, zp = 0.03, int(rng.integers(-10, 10))
        x = b.tensor((1, h, w, c), scale=scale, zero_point=zp)
        oh, ow = compute_out_size(pad, h, k[0], s[0], 1), compute_out_size(pad, w, k[1], s[1], 1)
        y = b.tensor((1, oh, ow, c), scale=scale, zero_point=zp)
        b.op("AVERAGE_POOL_2D", [x], [y], padding=pad, stride_h=s[0], stride_w=s[1], filter_height=k[0],
             filter_width=k[1], fused_activation_function="NONE")  # fmt: skip
        inputs.append(x)
        outputs.append(y)
    return b.build(inputs, outputs)


@pytest.mark.slow
@needs_emulator
def test_average_pool_lanes_on_emulated_cortex_m4_match_tflm(tmp_path):
    model = tmp_path / "pools.tflite"
    model.write_bytes(_pools_model())
    assert_bit_exact_on_emulated_cortex_m4(model, count=3, seed=2)
