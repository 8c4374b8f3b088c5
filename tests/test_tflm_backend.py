"""The tflm backend end to end: convert, generated files, fit, host runner, and bad input."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tflite_micro", reason="tflite-micro not installed")

from edgekit import backends, targets  # noqa: E402
from edgekit.core import Artifact, RunOptions  # noqa: E402
from edgekit.backends.tflite import LiteRTRunner  # noqa: E402
from edgekit.backends.tflm import FloatOpError  # noqa: E402
from edgekit.errors import EdgekitError, InvalidModelError  # noqa: E402
from edgekit.models import open_source  # noqa: E402
from edgekit.recipes import Recipe  # noqa: E402
from edgekit.tflm.fit import ModelDoesNotFitError  # noqa: E402

import tinymodels  # noqa: E402

GXX = shutil.which("arm-none-eabi-g++")


def convert(model_path: Path, out_dir: Path, target: str = "nucleo-l4r5zi", calibration=None) -> Artifact:
    """Run the tflm converter on a model file and wrap its output as an artifact."""
    backend = backends.get("tflm")
    source = open_source(model_path)
    the_target = targets.get(target)
    recipe = Recipe(source.sha256, "tflm", "int8", target_options=backend.recipe_options(the_target))
    out_dir.mkdir(parents=True, exist_ok=True)
    result = backend.convert(source, recipe, the_target, calibration, out_dir)
    return Artifact(
        path=out_dir, backend="tflm", recipe=recipe.to_json(), recipe_key=recipe.key(),
        primary=result.primary, inputs=result.inputs, outputs=result.outputs,
        files=sorted(p.name for p in out_dir.iterdir()), sha256="", info=result.info,
    )


def host_runner(artifact: Artifact, target: str = "nucleo-l4r5zi"):
    return backends.get("tflm").load(artifact, targets.get(target), RunOptions())


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def tiny_artifact(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tiny")
    model = write(folder, "tiny_cnn.tflite", tinymodels.tiny_int8_cnn_bytes(seed=3))
    return convert(model, folder / "artifact")


def test_tiny_cnn_artifact_files_and_info(tiny_artifact):
    files = set(tiny_artifact.files)
    assert {"model.tflite", "model_data.cc", "model_data.h", "model_ops.h", "model_settings.h"} <= files
    info = tiny_artifact.info
    assert info["ops"] == ["CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "RESHAPE",
                           "FULLY_CONNECTED", "SOFTMAX"]
    assert info["arena_bytes"] == info["arena_measured_bytes"] + info["arena_margin_bytes"]
    assert info["arena_bytes"] % 16 == 0
    settings = (tiny_artifact.path / "model_settings.h").read_text()
    assert f"constexpr int kTensorArenaSize = {info['arena_bytes']};" in settings
    assert "#define EK_TFLM_MODEL_DATA g_tiny_cnn_model_data" in settings
    assert info["fit"]["fits"] is True
    assert info["fit"]["target"] == "nucleo-l4r5zi"
    assert any("nucleo-l4r5zi has 640 KiB: fits" in line for line in info["summary"])
    assert info["calibration"].startswith("none")
    # an already-int8 model is used as it is, byte for byte
    assert (tiny_artifact.path / "model.tflite").read_bytes() == tinymodels.tiny_int8_cnn_bytes(seed=3)


def test_host_runner_matches_litert_int8(tiny_artifact):
    runner = host_runner(tiny_artifact)
    assert runner.name == "tflm-host"
    litert = LiteRTRunner(tiny_artifact.primary_path)
    (spec,) = runner.inputs
    assert spec.dtype == "int8" and spec.shape == (1, 8, 8, 1)
    rng = np.random.default_rng(11)
    worst = 0
    for _ in range(20):
        x = rng.integers(-128, 128, size=spec.shape, dtype=np.int8)
        ours = runner.infer({spec.name: x})
        theirs = litert.infer({spec.name: x})
        for name, value in ours.items():
            assert value.dtype == np.int8 and value.shape == theirs[name].shape
            worst = max(worst, int(np.abs(value.astype(int) - theirs[name].astype(int)).max()))
    # two int8 implementations of the same model: equal up to one rounding step
    assert worst <= 1


def test_runner_memory_reports_arena_flash_ram_ops_and_budgets(tiny_artifact):
    memory = host_runner(tiny_artifact, "arduino-nano-33-ble").memory()
    info = tiny_artifact.info
    assert memory["arena_bytes"] == info["arena_bytes"]
    assert memory["arena_persistent_bytes"] + memory["arena_nonpersistent_bytes"] <= info["arena_measured_bytes"]
    assert memory["ops"] == info["ops"]
    # six kernels on a Cortex-M4F: the CMSIS-NN runtime figure plus the model code
    assert memory["flash_bytes"] == info["model_bytes"] + 105_500 + 512
    assert memory["ram_bytes"] > memory["arena_bytes"]
    assert memory["ram_budget_bytes"] == 256 * 1024
    assert memory["flash_budget_bytes"] == 0xF0000  # 1 MiB minus the bootloader
    assert memory["fits"] is True


def test_runner_refuses_a_wrong_feed(tiny_artifact):
    runner = host_runner(tiny_artifact)
    with pytest.raises(EdgekitError, match="int8"):
        runner.infer({runner.inputs[0].name: np.zeros((1, 8, 8, 1), np.float32)})


def test_keras_source_is_quantized_with_the_calibration_given(tmp_path):
    source = tmp_path / "tiny.h5"
    model = tinymodels.tiny_cnn(seed=1)
    model.save(source)
    calibration = tinymodels.calibration_data((8, 8, 1), count=32, seed=5)
    artifact = convert(source, tmp_path / "out", calibration=calibration)
    assert [s.dtype for s in artifact.inputs + artifact.outputs] == ["int8", "int8"]
    assert artifact.info["calibration_samples"]["samples"] == 32
    assert artifact.info["calibration_samples"]["shape"] == [32, 8, 8, 1]
    # the int8 model answers like the float one on the calibration inputs
    runner = host_runner(artifact)
    (spec,) = runner.inputs
    (out,) = runner.outputs
    agree = 0
    for sample in calibration:
        q = np.clip(np.round(sample / spec.scale + spec.zero_point), -128, 127).astype(np.int8)
        y = runner.infer({spec.name: q[None]})[out.name]
        agree += int(np.argmax(y) == np.argmax(model(sample[None]).numpy()))
    assert agree >= 28


def test_corrupt_flatbuffer_is_one_clear_line(tmp_path):
    data = bytearray(tinymodels.tiny_int8_cnn_bytes(seed=3))
    broken = write(tmp_path, "broken.tflite", bytes(data[: len(data) // 2]))
    with pytest.raises(InvalidModelError) as caught:
        convert(broken, tmp_path / "out")
    assert "broken.tflite" in str(caught.value) and "\n" not in str(caught.value)


def _int8_model_with_a_float_op() -> bytes:
    """int8 in and out, but SIN (no int8 kernel) left in float between DEQUANTIZE and QUANTIZE."""
    import tensorflow as tf
    import tf_keras as keras

    inputs = keras.Input(shape=(4,), batch_size=1)
    x = keras.layers.Dense(4, name="dense")(inputs)
    x = keras.layers.Lambda(tf.sin, name="sin")(x)
    model = keras.Model(inputs, keras.layers.Dense(2, name="head")(x))
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    samples = tinymodels.calibration_data((4,), count=8)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([s[None]] for s in samples)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return bytes(converter.convert())


def test_float_only_op_is_named(tmp_path):
    model = write(tmp_path, "sin.tflite", _int8_model_with_a_float_op())
    with pytest.raises(FloatOpError) as caught:
        convert(model, tmp_path / "out")
    message = str(caught.value)
    assert re.search(r"operator \d+ \(SIN\)", message), message
    assert "no int8 kernel" in message and "\n" not in message


def _wide_conv_bytes() -> bytes:
    """An int8 conv whose 128x128x16 output alone (256 KiB) fills a 256 KiB board."""
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input(shape=(128, 128, 3), batch_size=1)
    outputs = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(inputs)
    model = keras.Model(inputs, outputs)
    return tinymodels.to_tflite(model, quantize="int8", calibration=tinymodels.calibration_data((128, 128, 3), 4))


def test_model_whose_arena_exceeds_ram_is_refused_with_the_numbers(tmp_path):
    model = write(tmp_path, "wide.tflite", _wide_conv_bytes())
    with pytest.raises(ModelDoesNotFitError) as caught:
        convert(model, tmp_path / "out", target="arduino-nano-33-ble")
    report = caught.value.report
    assert report.arena_bytes > 128 * 128 * 16 + 128 * 128 * 3
    message = str(caught.value)
    assert re.search(r"needs \d+ KiB RAM, arduino-nano-33-ble has 256 KiB: does not fit", message), message
    assert f"arena {report.arena_bytes:,} B" in message
    assert not (tmp_path / "out" / "model_data.cc").exists()
    # the same model fits the 640 KiB board
    assert convert(model, tmp_path / "out2", target="nucleo-l4r5zi").info["fit"]["fits"]


def test_ad01_fits_nucleo_l4r5zi(mlperf_dir, tmp_path):
    artifact = convert(mlperf_dir / "ad01_int8.tflite", tmp_path / "ad01")
    fit = artifact.info["fit"]
    assert fit["fits"] and fit["target"] == "nucleo-l4r5zi"
    assert fit["model_bytes"] == (mlperf_dir / "ad01_int8.tflite").stat().st_size
    assert fit["ram_bytes"] < fit["ram_budget"] and fit["flash_bytes"] < fit["flash_budget"]
    assert artifact.info["ops"] == ["FULLY_CONNECTED"]


@pytest.mark.skipif(GXX is None, reason="arm-none-eabi-g++ not installed")
def test_kws_artifact_arrays_compile_for_cortex_m4(mlperf_dir, tmp_path):
    artifact = convert(mlperf_dir / "kws_ref_model.tflite", tmp_path / "kws")
    assert artifact.info["ops"] == ["CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "RESHAPE",
                                    "FULLY_CONNECTED", "SOFTMAX"]
    assert artifact.info["op_counts"]["CONV_2D"] == 5
    assert artifact.info["op_counts"]["DEPTHWISE_CONV_2D"] == 4
    subprocess.run(
        [GXX, "-std=c++11", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16",
         "-Wall", "-Werror", "-c", "model_data.cc", "-o", "model_data.o"],
        cwd=artifact.path, check=True, capture_output=True,
    )
    symbols = subprocess.run(
        ["arm-none-eabi-nm", "-S", "model_data.o"], cwd=artifact.path, check=True,
        capture_output=True, text=True,
    ).stdout
    size_hex = re.search(r"^[0-9a-f]+ ([0-9a-f]+) R g_kws_ref_model_model_data$", symbols, re.M).group(1)
    assert int(size_hex, 16) == (mlperf_dir / "kws_ref_model.tflite").stat().st_size


def test_kws_on_host_runner_equals_litert(mlperf_dir, tmp_path):
    artifact = convert(mlperf_dir / "kws_ref_model.tflite", tmp_path / "kws")
    runner, litert = host_runner(artifact), LiteRTRunner(artifact.primary_path)
    (spec,) = runner.inputs
    rng = np.random.default_rng(0)
    for _ in range(5):
        x = rng.integers(-128, 128, size=spec.shape, dtype=np.int8)
        ours, theirs = runner.infer({spec.name: x}), litert.infer({spec.name: x})
        assert np.argmax(ours["Identity"]) == np.argmax(theirs["Identity"])


def test_fit_basis_follows_the_core():
    from edgekit.tflm.fit import fit_report, kib

    facts = dict(model_bytes=10_000, kernel_count=9, arena_bytes=20_000, io_bytes=100)
    m4 = fit_report(targets.get("nucleo-l4r5zi"), **facts)
    xtensa = fit_report(targets.get("esp32-s3"), **facts)
    assert m4.kernels == "cmsis-nn" and xtensa.kernels == "reference"
    # two kernels beyond the seven of the measured runtime, 4 KiB each
    assert m4.runtime_flash_bytes == 105_500 + 512 + 2 * 4096
    assert xtensa.runtime_flash_bytes == 60_700 + 512 + 2 * 4096
    assert m4.ram_bytes == 20_000 + 4096 + 100
    assert [kib(212 * 1024), kib(1536), kib(2 * 1024**2), kib(24 * 1024**3)] == [
        "212 KiB", "1.5 KiB", "2 MiB", "24 GiB"]


def test_convert_command_prints_arena_and_fit(mlperf_dir, capsys):
    from edgekit.cli import main

    main(["convert", str(mlperf_dir / "ad01_int8.tflite"), "--target", "mcu", "--backend", "tflm"])
    out = capsys.readouterr().out
    assert "int8 model 276,976 B, 1 op: FULLY_CONNECTED" in out
    assert re.search(r"arena [\d,]+ B \(measured [\d,]+ B \+ \d+ B alignment margin\)", out), out
    assert re.search(r"needs [\d.]+ KiB RAM, nucleo-l4r5zi has 640 KiB: fits", out), out


def test_convert_command_refuses_a_float_model_without_calibration(tmp_path, capsys):
    from edgekit.cli import main

    source = tmp_path / "tiny.h5"
    tinymodels.tiny_cnn(seed=2).save(source)
    with pytest.raises(SystemExit) as exited:
        main(["convert", str(source), "--target", "mcu", "--backend", "tflm"])
    assert exited.value.code == 1
    # (TensorFlow, imported by this test process to build the model, logs on stderr too)
    (line,) = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error: ")]
    assert "--calibration digits|mnist5k|FILE.npz" in line
