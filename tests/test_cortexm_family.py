"""The Cortex-M family on emulated boards: one small model on every core, bit-exact with TFLM.

Each board below is a real QEMU machine running edgekit's aot-cortexm
firmware, built once per board for the session's model: the Cortex-M3
(mps2-an385), the Cortex-M33 in its Secure state (mps2-an505), the Cortex-M55
(mps3-an547), the Cortex-M0 of the micro:bit talking through the nRF51's own
UART, and the STM32F405 of the Netduino Plus 2 talking through its USART
(the SR/DR register layout). Outputs must equal the TFLM interpreter's on
the same .tflite, and a repeated measurement must count the same
instructions. Skips without the ARM toolchain, cmake, QEMU or tflite-micro.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pytest

pytest.importorskip("tflite_micro", reason="tflite-micro not installed")

TOOLS = ("arm-none-eabi-gcc", "arm-none-eabi-nm", "cmake", "qemu-system-arm")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        any(shutil.which(t) is None for t in TOOLS),
        reason=f"needs {', '.join(TOOLS)} to build and emulate the firmware",
    ),
]

# board -> (its core as gcc names it, whether the aot kernels take the DSP path, its UART driver)
FAMILY = {
    "mps2-an385": ("cortex-m3", False, "cmsdk"),
    "mps2-an505": ("cortex-m33", True, "cmsdk"),
    "mps3-an547": ("cortex-m55", True, "cmsdk"),
    "microbit": ("cortex-m0", False, "nrf"),
    "netduinoplus2": ("cortex-m4", True, "stm32"),
}


def _int8_cnn(path, input_shape, seed):
    """tests/tinymodels.tiny_cnn (conv, depthwise conv, pool, dense, softmax) as an int8 .tflite."""
    import tinymodels

    model = tinymodels.tiny_cnn(input_shape=input_shape, seed=seed)
    calibration = tinymodels.calibration_data(input_shape, seed=seed)
    path.write_bytes(tinymodels.to_tflite(model, quantize="int8", calibration=calibration))
    return path


@pytest.fixture(scope="module")
def small_cnn(tmp_path_factory):
    """A 16x16 CNN small enough for the micro:bit's 16 KiB of RAM (a few KiB of activations)."""
    return _int8_cnn(tmp_path_factory.mktemp("family") / "small_cnn.tflite", (16, 16, 1), seed=3)


@pytest.mark.parametrize("target", sorted(FAMILY))
def test_small_cnn_on_every_core_is_bit_exact_with_deterministic_instruction_counts(target, small_cnn):
    from edgekit import pipeline

    mcpu, dsp, driver = FAMILY[target]
    conversion = pipeline.convert(str(small_cnn), target, "aot", "int8")
    artifact = conversion.artifact
    assert artifact.info["dsp"] is dsp  # the portable C path on M0/M3, SMLAD on the others
    assert artifact.info["fit"]["fits"] is True
    reference = pipeline.reference_runner(artifact, conversion.source)
    runner = pipeline.open_runner(artifact, target)
    try:
        variables = runner.project.manifest["variables"]
        assert f"-mcpu={mcpu}" in variables["cpu_flags"] and variables["uart_driver"] == driver
        spec = runner.inputs[0]
        rng = np.random.default_rng(5)
        for i in range(4):
            x = rng.integers(-128, 128, size=spec.shape, dtype=np.int8)
            if i == 0:
                x[...] = 127  # saturating input
            feed = {spec.name: x}
            ours, theirs = runner.infer(feed), reference.infer(feed)
            for name, expected in theirs.items():
                assert np.array_equal(np.asarray(ours[name]).reshape(expected.shape), expected), (target, i, name)
        first = runner.measure(feed, count=2)
        second = runner.measure(feed, count=2)
        # -icount shift=0: the same firmware on the same input counts the same instructions, run after run
        assert first.ticks == second.ticks and first.min_ticks == first.max_ticks
        assert runner.device_timing()["instructions"] > 0
        elf = runner.project.elf
    finally:
        runner.close()
    symbols = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True, check=True).stdout
    # the Cortex-M0 has no 32x32->64 multiply: the requantization's products go through libgcc
    assert ("__aeabi_lmul" in symbols) is (target == "microbit")


def test_one_core_on_two_boards_counts_the_same_instructions_whatever_their_clock(small_cnn):
    """The AN386 (25 MHz) and the Netduino Plus 2 (168 MHz) both run an M4F: the counts agree to a tick.

    Ticks become instructions through each target's clock, so this checks the
    clock the netduinoplus2 target claims against the emulator's.
    """
    from edgekit import pipeline

    counts = {}
    for target in ("mps2-an386", "netduinoplus2"):
        artifact = pipeline.convert(str(small_cnn), target, "aot", "int8").artifact
        runner = pipeline.open_runner(artifact, target)
        try:
            spec = runner.inputs[0]
            runner.measure({spec.name: np.zeros(spec.shape, np.int8)}, count=1)
            counts[target] = runner.device_timing()["instructions"]
        finally:
            runner.close()
    assert abs(counts["mps2-an386"] - counts["netduinoplus2"]) <= 40  # one 25 MHz tick


def test_m0_multiplies_64_bits_in_libgcc_and_the_m3_in_one_instruction(small_cnn):
    """The same bundle compiled for both cores: SMULL/UMULL/SMLAL on the M3, calls to __aeabi_lmul on the M0."""
    from edgekit import firmware, pipeline, targets

    listings = {}
    for target in ("microbit", "mps2-an385"):
        artifact = pipeline.convert(str(small_cnn), target, "aot", "int8").artifact
        project = firmware.built_firmware(artifact, targets.get(target))
        listings[target] = subprocess.run(
            ["arm-none-eabi-objdump", "-d", str(project.elf)], capture_output=True, text=True, check=True
        ).stdout
    long_multiply = r"\s[su](mull|mlal)\s"  # 32x32->64 (accumulating) multiplies, ARMv7-M and up
    assert re.search(r"\sbl\s+\w+\s+<__aeabi_lmul>", listings["microbit"])
    assert not re.search(long_multiply, listings["microbit"])
    assert re.search(long_multiply, listings["mps2-an385"])


def test_cli_bench_on_the_microbit_runs_the_small_cnn_end_to_end(small_cnn, tmp_path):
    from click.testing import CliRunner

    from edgekit.cli import cli

    out = tmp_path / "bench.json"
    result = CliRunner().invoke(
        cli,
        ["bench", str(small_cnn), "--target", "microbit", "--backend", "aot", "-n", "3", "-w", "1",
         "--no-log", "-o", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["runner"] == "device-qemu"
    assert report["fidelity"]["bit_exact"] is True
    memory = report["memory"]
    # the firmware as linked: arena, buffers and stack within the 16 KiB the board has
    assert memory["ram_bytes"] + memory["stack_reserved_bytes"] <= 16 * 1024


def _refusal(capsys, model) -> tuple[int, str]:
    from clitools import run_cli_here

    code, _, err = run_cli_here(capsys, "bench", str(model), "--target", "microbit", "--backend", "aot", "--no-log")
    return code, err


def _planned_arena(model) -> int:
    from edgekit.aot.compiler import compile_model

    return compile_model(model).arena_bytes


def test_microbit_refuses_a_cnn_whose_activations_outgrow_its_ram_with_the_numbers(tmp_path, capsys):
    model = _int8_cnn(tmp_path / "wide_cnn.tflite", (64, 64, 1), seed=4)  # two 16 KiB activations live at once
    arena = _planned_arena(model)
    assert arena > 16 * 1024
    code, err = _refusal(capsys, model)
    assert code == 1
    assert "microbit has 16 KiB: does not fit" in err
    assert f"arena {arena:,} B + stack 2,048 B" in err


def test_microbit_refuses_resnet8_with_the_numbers(mlperf_dir, capsys):
    model = mlperf_dir / "pretrainedResnet_quant.tflite"
    arena = _planned_arena(model)  # about 34 KB even planned in place: twice the board's RAM
    assert arena > 2 * 16 * 1024
    code, err = _refusal(capsys, model)
    assert code == 1
    assert re.search(r"needs \d+ KiB RAM, microbit has 16 KiB: does not fit", err)
    assert f"arena {arena:,} B" in err
