"""TFLM firmware templates: rendering, what can be built without TFLM, and the full build with TFLM_DIR."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tflite_micro", reason="tflite-micro not installed")

from edgekit import backends, firmware, pipeline, targets  # noqa: E402
from edgekit.core import RunOptions  # noqa: E402
from edgekit.placement import place  # noqa: E402

import tinymodels  # noqa: E402

ARM_GCC = shutil.which("arm-none-eabi-gcc")
CMAKE = shutil.which("cmake")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("tflm-fw") / "tiny_fw.tflite"
    path.write_bytes(tinymodels.tiny_int8_cnn_bytes(seed=4))
    return path


def artifact_for(model: Path, target: str):
    return pipeline.convert(str(model), target, backend="tflm").artifact


def test_cmake_template_is_chosen_for_the_emulated_board(tiny_model, tmp_path):
    artifact = artifact_for(tiny_model, "mps2-an386")
    project = firmware.render(artifact, targets.get("mps2-an386"), tmp_path / "fw")
    root = project.path
    assert (root / "firmware.json").is_file()
    for rel in ("CMakeLists.txt", "tflm.cmake", "README.md", "model/ek_model_tflm.cc", "model/model_data.cc",
                "model/model_data.h", "model/model_ops.h", "model/model_settings.h", "common/ek_protocol.c"):
        assert (root / rel).is_file(), rel
    assert not (root / "template.yaml").exists()
    settings = (root / "model" / "model_settings.h").read_text()
    assert f"kTensorArenaSize = {artifact.info['arena_bytes']};" in settings


def _configure(project_dir: Path, env_tflm: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("TFLM_DIR", "TFLM_LIBRARY")}
    if env_tflm is not None:
        env["TFLM_DIR"] = env_tflm
    return subprocess.run(
        [CMAKE, "-S", str(project_dir), "-B", str(project_dir / "build")],
        capture_output=True, text=True, env=env, timeout=120,
    )


@pytest.mark.skipif(CMAKE is None or ARM_GCC is None, reason="cmake or arm-none-eabi-gcc not installed")
def test_cmake_project_says_what_tflm_dir_must_be(tiny_model, tmp_path):
    artifact = artifact_for(tiny_model, "mps2-an386")
    project = firmware.render(artifact, targets.get("mps2-an386"), tmp_path / "fw")
    unset = _configure(project.path, None)
    assert unset.returncode != 0
    assert "TFLM_DIR is not set" in unset.stderr
    shutil.rmtree(project.path / "build")
    not_tflm = tmp_path / "not-tflm"
    not_tflm.mkdir()
    wrong = _configure(project.path, str(not_tflm))
    assert wrong.returncode != 0
    assert "is not a TensorFlow Lite Micro tree" in wrong.stderr


def test_arduino_template_is_chosen_for_the_nano(tiny_model, tmp_path):
    artifact = artifact_for(tiny_model, "arduino-nano-33-ble")
    project = firmware.render(artifact, targets.get("arduino-nano-33-ble"), tmp_path / "edgekit_tflm")
    root = project.path
    sketch = (root / "edgekit_tflm.ino").read_text()
    assert "arduino-nano-33-ble" in sketch
    assert f"({artifact.info['arena_bytes']} bytes)" in sketch
    assert sketch.index("#include <TensorFlowLite.h>") < sketch.index('#include "common/ek_protocol.h"')
    # the unity files point at files that exist in the rendered sketch
    for unit in ("ek_sources_common.c", "ek_sources_model.cpp"):
        for line in (root / unit).read_text().splitlines():
            if line.startswith('#include "'):
                assert (root / line.split('"')[1]).is_file(), line


@pytest.mark.skipif(ARM_GCC is None, reason="arm-none-eabi-gcc not installed")
def test_arduino_protocol_unit_compiles_for_cortex_m4(tiny_model, tmp_path):
    artifact = artifact_for(tiny_model, "arduino-nano-33-ble")
    project = firmware.render(artifact, targets.get("arduino-nano-33-ble"), tmp_path / "edgekit_tflm")
    subprocess.run(
        [ARM_GCC, "-std=c99", "-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16",
         "-Wall", "-Werror", "-c", "ek_sources_common.c", "-o", str(tmp_path / "common.o")],
        cwd=project.path, check=True, capture_output=True, text=True,
    )


def _library_tree(root: Path) -> Path:
    """A tree shaped like a generated TFLM tree, with one source: what tflm.cmake's cache acts on."""
    (root / "tensorflow/lite/micro").mkdir(parents=True)
    (root / "tensorflow/lite/micro/micro_interpreter.h").write_text("#pragma once\n")
    (root / "tensorflow/lite/micro/answer.cc").write_text("int ek_answer() { return 42; }\n")
    (root / "third_party/flatbuffers/include").mkdir(parents=True)
    return root


def _configure_library(tree: Path, cache: Path, build: Path, cpu_flags: str) -> subprocess.CompletedProcess:
    project = build.parent / f"{build.name}-src"
    project.mkdir()
    shutil.copy(firmware.templates_dir() / "tflm-cmake" / "tflm.cmake", project)
    (project / "CMakeLists.txt").write_text(
        "cmake_minimum_required(VERSION 3.16)\n"
        f"set(CMAKE_TOOLCHAIN_FILE {firmware.templates_dir() / 'common/cortexm/arm-none-eabi.cmake'})\n"
        "project(library_only C CXX)\n"
        f'set(EK_CPU_FLAGS {cpu_flags})\nset(EK_OPT "-O2")\n'
        "include(tflm.cmake)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("TFLM_DIR", "TFLM_LIBRARY")}
    env |= {"TFLM_DIR": str(tree), "TFLM_CACHE": str(cache)}
    return subprocess.run([CMAKE, "-S", str(project), "-B", str(build)], capture_output=True, text=True,
                          env=env, timeout=120, check=True)  # fmt: skip


@pytest.mark.skipif(CMAKE is None or ARM_GCC is None, reason="cmake or arm-none-eabi-gcc not installed")
def test_tflm_is_compiled_once_per_cpu_and_linked_from_the_cache_after(tmp_path):
    tree, cache = _library_tree(tmp_path / "tree"), tmp_path / "cache"
    first = _configure_library(tree, cache, tmp_path / "m4-first", "-mcpu=cortex-m4 -mthumb -mfloat-abi=soft")
    assert "linking" not in first.stdout
    subprocess.run([CMAKE, "--build", str(tmp_path / "m4-first"), "--target", "tflm"], check=True,
                   capture_output=True, timeout=120)  # fmt: skip
    (archive,) = cache.glob("libtflm-*.a")
    assert not list(cache.glob("*.part"))
    # the next firmware for the same CPU links that archive; another CPU compiles its own
    again = _configure_library(tree, cache, tmp_path / "m4-again", "-mcpu=cortex-m4 -mthumb -mfloat-abi=soft")
    assert f"linking {archive}" in again.stdout
    other = _configure_library(tree, cache, tmp_path / "m0", "-mcpu=cortex-m0 -mthumb -mfloat-abi=soft")
    assert "linking" not in other.stdout
    # a source that changes (a tree regenerated in place) is a new library too
    source = tree / "tensorflow/lite/micro/answer.cc"
    os.utime(source, (source.stat().st_atime, source.stat().st_mtime + 10))
    changed = _configure_library(tree, cache, tmp_path / "m4-changed", "-mcpu=cortex-m4 -mthumb -mfloat-abi=soft")
    assert "linking" not in changed.stdout


def test_a_firmware_from_another_tflm_tree_is_another_build(tiny_model, monkeypatch):
    artifact = artifact_for(tiny_model, "mps2-an386")
    board, template = targets.get("mps2-an386"), firmware.choose_template(targets.get("mps2-an386"), "tflm")
    monkeypatch.setenv("TFLM_DIR", "/one/tree")
    one = firmware.firmware_key(artifact, board, template)
    monkeypatch.setenv("TFLM_DIR", "/another/tree")
    assert firmware.firmware_key(artifact, board, template) != one


#: CMSIS-NN's DSP build (Cortex-M4) and its Helium build (Cortex-M55), each on its emulated board
FAMILY = ("mps2-an386", "mps3-an547")


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("TFLM_DIR"), reason="TFLM_DIR (a TensorFlow Lite Micro tree) not set")
@pytest.mark.skipif(shutil.which("qemu-system-arm") is None, reason="qemu-system-arm not installed")
@pytest.mark.parametrize("target", FAMILY)
def test_tflm_firmware_on_the_emulated_board_matches_the_host_interpreter(tiny_model, target, monkeypatch):
    if "mve" in targets.get(target).features:
        # CMSIS-NN's Helium depthwise convolution keeps 4,464 B of scratch for a 3x3 kernel, more
        # than the arena the host's reference kernels measured (the tflm backend does not add it yet)
        monkeypatch.setenv("TFLM_ARENA_EXTRA", "8192")
    artifact = artifact_for(tiny_model, target)
    board = targets.get(target)
    backend = backends.get("tflm")
    host = backend.load(artifact, targets.get("nucleo-l4r5zi"), RunOptions())
    with place(artifact, board, RunOptions()) as device:
        (spec,) = device.inputs
        rng = np.random.default_rng(5)
        for _ in range(3):
            x = rng.integers(-128, 128, size=spec.shape, dtype=np.int8)
            ours, theirs = device.infer({spec.name: x}), host.infer({spec.name: x})
            for name in theirs:
                np.testing.assert_array_equal(ours[name], theirs[name])
        assert device.device_timing()["instructions"] > 0
