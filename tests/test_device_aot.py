"""A real aot-compiled int8 model as firmware on the emulated Cortex-M4, through the pipeline and the CLI.

Outputs must equal the tflite-micro interpreter's bit for bit: the bundle
mirrors TFLM's reference kernels, and the protocol must not change a byte.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from clitools import run_cli

pytestmark = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("qemu-system-arm", "arm-none-eabi-gcc", "cmake")),
    reason="qemu-system-arm, arm-none-eabi-gcc and cmake are needed for the emulated board",
)


@pytest.fixture(scope="module")
def tiny_int8(tmp_path_factory):
    pytest.importorskip("tflite_micro")
    from tinymodels import tiny_int8_cnn_bytes

    path = tmp_path_factory.mktemp("tiny") / "tiny_cnn.tflite"
    path.write_bytes(tiny_int8_cnn_bytes(seed=3))
    return path


def tflm_outputs(model, x: np.ndarray) -> np.ndarray:
    from tflite_micro.python.tflite_micro import runtime

    interpreter = runtime.Interpreter.from_file(str(model))
    interpreter.set_input(x, 0)
    interpreter.invoke()
    return interpreter.get_output(0)


def test_aot_firmware_on_qemu_matches_tflm_bit_for_bit(tiny_int8):
    from edgekit import pipeline, targets
    from edgekit.core import RunOptions
    from edgekit.placement import place

    target = targets.get("mps2-an386")
    artifact = pipeline.convert(str(tiny_int8), target="mps2-an386", backend="aot").artifact
    assert artifact.info["dsp"], "the Cortex-M4's DSP path is what runs on this target"
    spec = artifact.inputs[0]
    rng = np.random.default_rng(11)
    with place(artifact, target, RunOptions()) as runner:
        assert runner.name == "device-qemu"
        for _ in range(3):
            x = rng.integers(-128, 128, size=spec.shape).astype(np.int8)
            y = runner.infer({spec.name: x})[artifact.outputs[0].name]
            np.testing.assert_array_equal(y, tflm_outputs(tiny_int8, x))
        timing = runner.device_timing()
        memory = runner.memory()
    assert 0 < timing["instructions"] < 10_000_000 and timing["instructions"] % 40 == 0  # whole SysTick ticks
    assert memory["arena_bytes"] == artifact.info["arena_bytes"]
    assert 0 < memory["flash_bytes"] < target.flash_bytes


def test_a_float_model_runs_on_the_cortex_m7_fpu(tmp_path):
    # float32 tensors travel as little-endian bytes; the kernels need libm (expf)
    from ai_edge_litert.interpreter import Interpreter
    from tinymodels import tiny_float_cnn_bytes

    from edgekit import pipeline, targets
    from edgekit.core import RunOptions
    from edgekit.placement import place

    model = tmp_path / "tiny_float.tflite"
    model.write_bytes(tiny_float_cnn_bytes(seed=1))
    artifact = pipeline.convert(str(model), target="mps2-an500", backend="aot", quantization="none").artifact
    spec = artifact.inputs[0]
    x = np.random.default_rng(2).uniform(-1, 1, size=spec.shape).astype(np.float32)
    litert = Interpreter(model_path=str(model))
    litert.allocate_tensors()
    litert.set_tensor(litert.get_input_details()[0]["index"], x)
    litert.invoke()
    expected = litert.get_tensor(litert.get_output_details()[0]["index"])
    with place(artifact, targets.get("mps2-an500"), RunOptions()) as runner:
        y = runner.infer({spec.name: x})[artifact.outputs[0].name]
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_firmware_build_and_predict_from_the_command_line(tiny_int8, tmp_path):
    code, out, err = run_cli("firmware", str(tiny_int8), "--target", "mps2-an386", "--backend", "aot", "--out", str(tmp_path / "fw"), "--build")
    assert code == 0, err
    assert "rendered aot-cortexm for mps2-an386" in out and "mps2-an386: flash " in out
    assert (tmp_path / "fw" / "build" / "firmware.elf").is_file()
    assert_model_flash_read_from_the_build(tmp_path / "fw", tiny_int8, out)

    x = np.random.default_rng(5).integers(-128, 128, size=(4, 8, 8, 1)).astype(np.int8)
    np.save(tmp_path / "x.npy", x)
    code, out, err = run_cli(
        "predict", str(tiny_int8), "--target", "mps2-an386", "--backend", "aot",
        "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy"),
    )  # fmt: skip
    assert code == 0, err
    y = np.load(tmp_path / "y.npy")
    expected = np.concatenate([tflm_outputs(tiny_int8, x[i : i + 1]) for i in range(len(x))])
    np.testing.assert_array_equal(y.reshape(expected.shape), expected)


def assert_model_flash_read_from_the_build(project, model, out: str) -> None:
    """The bundle's own flash (from the linker map) lies between its constant arrays and its whole
    object file, and is what `edgekit build` prints beside the model's weight bytes."""
    import json
    import re
    import subprocess

    from edgekit.aot.fit import model_weight_bytes

    sizes = json.loads((project / "build" / "sizes.json").read_text())
    weights = model_weight_bytes(model)
    assert sizes["model_weights_bytes"] == weights
    objects = list((project / "build").rglob("model/*.c.obj"))
    assert len(objects) == 1
    table = subprocess.run(["arm-none-eabi-size", "-A", str(objects[0])], capture_output=True, text=True, check=True).stdout
    rows = [line.split() for line in table.splitlines()]
    rodata = sum(int(r[1]) for r in rows if r and r[0].startswith(".rodata"))
    whole = sum(int(r[1]) for r in rows if r and r[0].startswith((".text", ".rodata", ".data")))
    assert rodata <= sizes["model_flash_bytes"] <= whole < sizes["flash_bytes"]
    shown = re.search(r"the model's code and data ([\d,]+) B of that flash \(([\d.]+)x its ([\d,]+) B of weights\)", out)
    assert shown, out
    assert int(shown.group(1).replace(",", "")) == sizes["model_flash_bytes"]
    assert int(shown.group(3).replace(",", "")) == weights


def test_build_of_a_missing_folder_is_a_usage_error(tmp_path):
    code, _, err = run_cli("build", str(tmp_path / "nope"))
    assert code == 2 and "does not exist" in err
