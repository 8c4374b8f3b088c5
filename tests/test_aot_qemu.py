"""The DSP path (SMLAD/SXTB16) on the emulated Cortex-M4 is bit-exact with TFLM.

The aot bundle for a `dsp` target runs inside edgekit's firmware on
`qemu-system-arm -M mps2-an386`; its outputs must equal the host TFLM
interpreter's on the same inputs. Skips without the ARM toolchain, cmake or QEMU.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

pytest.importorskip("tflite_micro", reason="tflite-micro not installed")

TOOLS = ("arm-none-eabi-gcc", "cmake", "qemu-system-arm")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        any(shutil.which(t) is None for t in TOOLS),
        reason=f"needs {', '.join(TOOLS)} to build and emulate the firmware",
    ),
]


# every --optimize mode: `speed` and `balanced` differ in the requantization parameters,
# `size` takes the int8 filters through SXTB16; ResNet-8 adds 3x3 windows, strides and ADD
@pytest.mark.parametrize(
    ("filename", "optimize"),
    [
        ("ad01_int8.tflite", "speed"),
        ("kws_ref_model.tflite", "balanced"),
        ("kws_ref_model.tflite", "size"),
        ("pretrainedResnet_quant.tflite", "speed"),
    ],
)
def test_dsp_bundle_on_emulated_cortex_m4_matches_tflm(filename, optimize, mlperf_dir):
    from edgekit import pipeline

    conversion = pipeline.convert(str(mlperf_dir / filename), "mps2-an386", "aot", "int8", optimize=optimize)
    artifact = conversion.artifact
    assert artifact.info["dsp"] is True and artifact.info["optimize"] == optimize
    reference = pipeline.reference_runner(artifact, conversion.source)
    runner = pipeline.open_runner(artifact, "mps2-an386")
    try:
        spec = runner.inputs[0]
        rng = np.random.default_rng(11)
        for i in range(6):
            x = rng.integers(-128, 128, size=spec.shape, dtype=np.int8)
            if i == 0:
                x[...] = 127  # saturating input
            feed = {spec.name: x}
            ours, theirs = runner.infer(feed), reference.infer(feed)
            for name, expected in theirs.items():
                assert np.array_equal(np.asarray(ours[name]).reshape(expected.shape), expected), (i, name)
    finally:
        runner.close()


def _assert_matches_tflm_on_cortex_m4(model: bytes, path, seed: int) -> None:
    """Convert `model` (written to `path`) for mps2-an386; its outputs equal TFLM's on 4 inputs."""
    from edgekit import pipeline
    from tests.test_aot_builder import tflm_outputs

    path.write_bytes(model)
    artifact = pipeline.convert(str(path), "mps2-an386", "aot", "int8").artifact
    assert artifact.info["dsp"] is True
    runner = pipeline.open_runner(artifact, "mps2-an386")
    try:
        spec = runner.inputs[0]
        rng = np.random.default_rng(seed)
        feeds = [rng.integers(-128, 128, size=spec.shape, dtype=np.int8) for _ in range(4)]
        feeds[0][...] = 127
        for feed, expected in zip(feeds, tflm_outputs(model, [[f] for f in feeds])):
            ours = runner.infer({spec.name: feed})
            assert np.array_equal(np.asarray(next(iter(ours.values()))).reshape(expected.shape), expected)
    finally:
        runner.close()


def test_tap_by_tap_convolutions_on_emulated_cortex_m4_match_tflm(tmp_path):
    """ek_conv_taps.h's assembly in passes of eight words (16 channels: dilation and strides)
    and of four (8 and 24 channels: 5x5, batch 2, per-tensor; a multiplier above one; 1x1)."""
    from tests.test_aot_fuse import TAPS_CASES
    from tests.test_aot_ops import conv_model

    pytest.importorskip("tflite_micro", reason="tflite-micro not installed")
    for k, case in enumerate(["dilation-stride-mixed", "5x5-batch2-per-tensor", "gain-above-one", "1x1-24-channels"]):
        model = conv_model(**TAPS_CASES[case], seed=len(case), inner=True)
        _assert_matches_tflm_on_cortex_m4(model, tmp_path / f"conv{k}.tflite", k)


def test_fused_residual_block_on_emulated_cortex_m4_matches_tflm(tmp_path):
    """The assembly of ek_conv_taps.h (a window tap by tap, fused with its ADD), with odd
    pixel counts, 16 and 32 channels, dilation, the residual as either ADD input and a
    fused 1x1 stride-2 shortcut."""
    from tests.test_aot_fuse import residual_block

    pytest.importorskip("tflite_micro", reason="tflite-micro not installed")
    cases = [dict(h=7, w=5, residual_first=True), dict(c=32, h=6, w=6, dilation=2), dict(h=9, w=7, shortcut=True)]
    for k, case in enumerate(cases):
        _assert_matches_tflm_on_cortex_m4(residual_block(**case, seed=k), tmp_path / f"block{k}.tflite", k)
