"""FULLY_CONNECTED on the Cortex-M DSP path (kernels/ek_fc_dsp.h) is bit-exact with TFLM.

The layouts the compiler writes are checked against the kernel's reading of
them here; the kernel itself runs on the emulated Cortex-M4 (`mps2-an386`)
in every --optimize mode on one model whose layers take each branch: rows
and depths that are not whole groups, per-channel weights with RELU, a
batch of two, a layer whose gain is above one (no ek_rq, accumulators not
doubled), rows of 40 to 1,000 taps, and on the C loop one deeper than the
stack-widened row and one too small for the path; and an ADD
of two of them (its DSP path without tables at --optimize size).
"""

from __future__ import annotations


import numpy as np
import pytest

from edgekit.aot.ops.fully_connected import Q15_DEPTH, row_groups, wide_row_groups
from tests.test_aot_builder import ModelBuilder, assert_bit_exact_on_emulated_cortex_m4, needs_emulator


def test_row_groups_put_the_same_word_of_four_rows_together():
    rows = np.arange(-60, 6 * 10 - 60).reshape(6, 10).astype(np.int8)  # 6 rows of 10 taps
    packed = row_groups(rows, 16)
    assert packed.shape == (2, 4, 4, 4) and packed.dtype == np.int8
    for g in range(2):
        for j in range(4):
            for r in range(4):
                row = 4 * g + r
                want = np.zeros(4, np.int8)
                if row < 6:
                    taps = rows[row, 4 * j : 4 * j + 4]
                    want[: len(taps)] = taps
                np.testing.assert_array_equal(packed[g, j, r], want, err_msg=f"group {g} word {j} row {r}")


def test_wide_row_groups_hold_each_rows_taps_as_int16_in_smlad_order():
    rows = np.arange(-60, 6 * 10 - 60).reshape(6, 10).astype(np.int8)
    packed = wide_row_groups(rows, 16)
    assert packed.shape == (2, 4, 4, 4) and packed.dtype == np.int16
    padded = np.zeros((8, 16), np.int16)
    padded[:6, :10] = rows
    for g in range(2):
        for j in range(4):
            for r in range(4):
                # words (w0, w2) and (w1, w3): the pairs SXTB16 makes of the input's word
                want = padded[4 * g + r, 4 * j + np.array([0, 2, 1, 3])]
                np.testing.assert_array_equal(packed[g, j, r], want, err_msg=f"group {g} word {j} row {r}")


def fc_branches_model(seed: int = 5) -> bytes:
    rng = np.random.default_rng(seed)
    b = ModelBuilder()
    in_scale, depth, wide = 0.03, 37, Q15_DEPTH + 6
    x = b.tensor((2, depth), scale=in_scale, zero_point=-7)

    def layer(src, src_depth, src_scale, units, out_scale, out_zp, *, per_channel=False, act="NONE", weights=None):
        w_scale = rng.uniform(0.002, 0.02, size=units) if per_channel else np.array([0.01])
        if weights is None:
            weights = rng.integers(-127, 128, size=(units, src_depth))
        w = b.tensor((units, src_depth), data=weights, scale=w_scale, zero_point=0)
        bias_data = rng.integers(-5000, 5000, size=units) if out_scale > 1e-3 else np.zeros(units, np.int64)
        bias = b.tensor((units,), "int32", data=bias_data, scale=src_scale * w_scale)
        y = b.tensor((2, units), scale=out_scale, zero_point=out_zp)
        b.op("FULLY_CONNECTED", [src, w, bias], [y], fused_activation_function=act)
        return y

    # 9 x 40 MACs: too few for ek_fc_dsp.h (Q15_MIN_MACS), the C loop; 27 rows: three groups of four
    # and a ragged one, 40 taps: an odd number of 8-tap halves
    ragged = layer(x, depth, in_scale, 9, 0.3, 4, per_channel=True, act="RELU")
    grouped = layer(x, depth, in_scale, 27, 0.3, -4, per_channel=True, act="RELU")
    # a real multiplier above one (left shifts) on one tap of +-1 per row, so few outputs saturate
    one_hot = np.zeros((26, depth), np.int64)
    one_hot[np.arange(26), rng.integers(0, depth, size=26)] = rng.choice([-1, 1], size=26)
    gain = layer(x, depth, in_scale, 26, in_scale * 0.01 / 1.7, 0, weights=one_hot)
    hidden = layer(x, depth, in_scale, wide, 0.4, -3)
    deep = layer(hidden, wide, 0.4, 5, 40.0, 2)  # rows longer than EK_FC_Q15_DEPTH
    # rows of 1,000 and 300 taps: the stack's row buffer in its largest sizes (ek_fc_q15_s8); 304
    # padded taps are an even number of 8-tap halves
    long_rows = layer(layer(x, depth, in_scale, 1000, 0.4, 3), 1000, 0.4, 4, 40.0, -2)
    mid_rows = layer(layer(x, depth, in_scale, 300, 0.4, 3), 300, 0.4, 6, 20.0, 5)
    # an ADD of two of them: its DSP path reads 256-entry tables, except at --optimize size
    other = layer(x, depth, in_scale, 9, 0.45, -20)
    summed = b.tensor((2, 9), scale=0.5, zero_point=-6)
    b.op("ADD", [ragged, other], [summed], fused_activation_function="NONE")
    return b.build([x], [ragged, gain, deep, summed, grouped, long_rows, mid_rows])


@pytest.mark.slow
@needs_emulator
@pytest.mark.parametrize("optimize", ["speed", "balanced", "size"])
def test_fully_connected_on_emulated_cortex_m4_matches_tflm(optimize, tmp_path):
    model = tmp_path / "fc.tflite"
    model.write_bytes(fc_branches_model())
    assert_bit_exact_on_emulated_cortex_m4(model, optimize, count=7, seed=3)
