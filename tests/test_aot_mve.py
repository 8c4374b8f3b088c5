"""The Helium (MVE) kernels on the emulated Cortex-M55 (`mps3-an547`) are bit-exact with TFLM.

The aot bundle for an `mve` target takes kernels/ek_mve.h when the C
compiler has MVE: VMLADAVA dot products for conv and fully connected,
depthwise 16 channels per vector with a tail-predicated last block, and the
vectorized requantization. The sweep model chains layers whose channel
counts are not multiples of 16 (and a few that are), so one firmware runs
every kind of block and tail on many inputs; its outputs must equal the
host TFLM interpreter's. The same bundle compiled for a core without MVE
must take the other paths and build warning-free. Skips without the ARM
toolchain, cmake, QEMU or tflite-micro.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

pytest.importorskip("tflite_micro", reason="tflite-micro not installed")

TARGET = "mps3-an547"
BUILD_TOOLS = ("arm-none-eabi-gcc",)
RUN_TOOLS = ("arm-none-eabi-gcc", "arm-none-eabi-nm", "cmake", "qemu-system-arm")


def _missing(tools) -> str | None:
    absent = [t for t in tools if shutil.which(t) is None]
    return f"needs {', '.join(absent)}" if absent else None


def _sweep_model(seed: int = 7):
    """Conv, depthwise, dense and ADD layers with odd channel counts, strides, both paddings,
    depthwise multipliers 1 and 2, 1x1 convs read in place and through a patch."""
    import tf_keras as keras

    import tinymodels

    keras.utils.set_random_seed(seed)
    layers = keras.layers
    inputs = keras.Input(shape=(12, 12, 3), batch_size=1)
    # every layer's output is a model output: a rounding slip anywhere shows, not only
    # where it survives the layers after it
    outputs = []

    def out(tensor):
        outputs.append(tensor)
        return tensor

    x = out(layers.Conv2D(7, 3, padding="same", activation="relu")(inputs))  # k 27: a group, 3 rows past it
    x = out(layers.Add()([x, out(layers.Conv2D(7, 1)(x))]))  # ADD over 1,008 elements
    x = out(layers.DepthwiseConv2D(3, strides=2, padding="same")(x))  # 7 channels: the predicated block only
    x = out(layers.Conv2D(19, 1, activation="relu6")(x))  # 1x1 over 7 channels: padded to 16, a patch
    x = out(layers.DepthwiseConv2D(3, padding="valid", activation="relu6")(x))  # 19: a block, a tail of 3
    x = out(layers.Conv2D(33, 3, strides=2, padding="same")(x))  # k 171: 11 chunks, odd (the half entry)
    x = out(layers.DepthwiseConv2D(5, padding="same")(x))  # 33 channels, 25 taps
    x = out(layers.Conv2D(32, 1)(x))  # 1x1 over 33 channels, 8 groups of rows
    x = out(layers.Conv2D(16, 1, activation="relu")(x))  # 1x1 over 32: read in place, two chunks
    x = out(layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same")(x))  # multiplier 2: the other loop
    x = layers.Flatten()(x)
    x = out(layers.Add()([out(layers.Dense(37)(x)), out(layers.Dense(37)(x))]))  # depth 128; 37: an ADD tail
    out(layers.Dense(10)(x))  # depth 37: padded to 48, two rows past the groups
    model = keras.Model(inputs, outputs)
    tinymodels._seeded_weights(model, seed)
    calibration = tinymodels.calibration_data((12, 12, 3), seed=seed)
    return tinymodels.to_tflite(model, quantize="int8", calibration=calibration)


@pytest.fixture(scope="module")
def sweep_tflite(tmp_path_factory):
    path = tmp_path_factory.mktemp("mve") / "mve_sweep.tflite"
    path.write_bytes(_sweep_model())
    return path


def _compile_c(source_dir, name: str, mcpu: str) -> str:
    """The bundle's .c compiled as the firmware does (-O3, warnings as errors); the assembly."""
    result = subprocess.run(
        ["arm-none-eabi-gcc", f"-mcpu={mcpu}", "-mthumb", "-mfloat-abi=hard", "-mfpu=auto", "-O3",
         "-Wall", "-Wextra", "-Werror", "-S", "-o", "-", str(source_dir / f"{name}.c")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.skipif(_missing(BUILD_TOOLS) is not None, reason=str(_missing(BUILD_TOOLS)))
def test_mve_bundle_takes_helium_only_where_the_compiler_has_it(sweep_tflite, tmp_path):
    from edgekit.aot.compiler import compile_model

    bundle = compile_model(sweep_tflite, name="sweep", features={"dsp", "mve"})
    bundle.write(tmp_path)
    m55 = _compile_c(tmp_path, "sweep", "cortex-m55")
    m4 = _compile_c(tmp_path, "sweep", "cortex-m4")  # the same bundle on a DSP core: SMLAD, no vectors
    assert "vmladava.s8" in m55 and "vmullb.s8" in m55 and "vqrdmulh.s32" in m55
    assert "vctp.8" in m55  # the predicated tail of the odd channel counts
    assert "uxtw #2]" in m55  # ADD's tables read through gathers
    assert "vmladava" not in m4 and "smlad" in m4
    # the Helium path takes int8 weights and TFLM's parameters: --optimize changes nothing
    for optimize in ("speed", "size"):
        assert compile_model(sweep_tflite, name="sweep", features={"dsp", "mve"}, optimize=optimize).source == bundle.source


def test_mve_lane_order_puts_each_channel_where_the_depthwise_accumulators_hold_it():
    from edgekit.aot.ops.conv import mve_lane_order

    channels = 19  # one whole block and a tail of three
    ordered = mve_lane_order(np.arange(100, 100 + channels), channels)
    assert ordered.shape == (32,)
    for block in range(2):
        for q, first in enumerate((0, 2, 1, 3)):  # VMULLB/VMULLT then VMOVLB/VMOVLT
            for j in range(4):
                c = 16 * block + 4 * j + first
                assert ordered[16 * block + 4 * q + j] == (100 + c if c < channels else 0)


def _bit_exact_on_the_m55(model_path, inputs: int, seed: int, optimize: str = "balanced"):
    from edgekit import pipeline

    conversion = pipeline.convert(str(model_path), TARGET, "aot", "int8", optimize=optimize)
    artifact = conversion.artifact
    assert artifact.info["mve"] is True and artifact.info["dsp"] is True
    reference = pipeline.reference_runner(artifact, conversion.source)
    runner = pipeline.open_runner(artifact, TARGET)
    try:
        spec = runner.inputs[0]
        rng = np.random.default_rng(seed)
        for i in range(inputs):
            x = rng.integers(-128, 128, size=spec.shape, dtype=np.int8)
            if i == 0:
                x[...] = 127  # saturating input
            elif i == 1:
                x[...] = -128
            feed = {spec.name: x}
            ours, theirs = runner.infer(feed), reference.infer(feed)
            for name, expected in theirs.items():
                assert np.array_equal(np.asarray(ours[name]).reshape(expected.shape), expected), (i, name)
        first = runner.measure(feed, count=1)
        second = runner.measure(feed, count=1)
        assert first.ticks == second.ticks  # -icount: the same instructions, run after run
        instructions = runner.device_timing()["instructions"]
        elf = runner.project.elf
    finally:
        runner.close()
    symbols = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True, check=True).stdout
    return instructions, symbols


@pytest.mark.slow
@pytest.mark.skipif(_missing(RUN_TOOLS) is not None, reason=str(_missing(RUN_TOOLS)))
def test_mve_sweep_on_emulated_cortex_m55_matches_tflm(sweep_tflite):
    instructions, symbols = _bit_exact_on_the_m55(sweep_tflite, inputs=12, seed=3)
    assert "ek_mve_dot2x4_asm" in symbols  # the firmware ran the Helium dot loop
    assert instructions > 0


# The one slow end-to-end path of this file: a shared model, a few inputs. KWS takes the conv,
# depthwise, pool and fully connected paths; the sweep above covers the shapes and the ADD, and
# bench/family.py runs all three shared models on this core, bit-exact, for BENCHMARKS.md.
@pytest.mark.slow
@pytest.mark.skipif(_missing(RUN_TOOLS) is not None, reason=str(_missing(RUN_TOOLS)))
def test_a_shared_model_on_emulated_cortex_m55_matches_tflm(mlperf_dir):
    _bit_exact_on_the_m55(mlperf_dir / "kws_ref_model.tflite", inputs=4, seed=11)
