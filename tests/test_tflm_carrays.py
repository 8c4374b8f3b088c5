"""The model as C++ arrays: TFLM's generator format, compiled for Cortex-M, holding exactly the bytes."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgekit.tflm import carrays

GXX = shutil.which("arm-none-eabi-g++")
needs_arm_gcc = pytest.mark.skipif(GXX is None, reason="arm-none-eabi-g++ not installed")


def compile_arrays(folder: Path) -> Path:
    """Compile model_data.cc for a Cortex-M4 with one section per object; return the object."""
    obj = folder / "model_data.o"
    subprocess.run(
        [GXX, "-std=c++11", "-mcpu=cortex-m4", "-mthumb", "-Os", "-fdata-sections",
         "-Wall", "-Wextra", "-Werror", "-c", str(folder / "model_data.cc"), "-o", str(obj)],
        check=True, capture_output=True, text=True,
    )
    return obj


def section_bytes(obj: Path, section: str) -> bytes:
    out = obj.with_suffix(f".{section.strip('.').replace('.', '_')}.bin")
    subprocess.run(
        ["arm-none-eabi-objcopy", "-O", "binary", f"--only-section={section}", str(obj), str(out)],
        check=True, capture_output=True,
    )
    return out.read_bytes()


def section_alignment(obj: Path, section: str) -> int:
    listing = subprocess.run(
        ["arm-none-eabi-readelf", "-S", "-W", str(obj)], check=True, capture_output=True, text=True
    ).stdout
    for line in listing.splitlines():
        fields = line.split()
        if section in fields:
            return int(fields[-1])
    raise AssertionError(f"{section} not in {obj}")


def test_names_follow_tflm_generator():
    # generate_cc_arrays.py names <name>.tflite's array g_<name>_model_data
    assert carrays.array_name("kws_ref_model") == "g_kws_ref_model_model_data"
    assert carrays.array_name("mnist-cnn.v2") == "g_mnist_cnn_v2_model_data"
    assert carrays.array_name("8bit") == "g_m_8bit_model_data"


def test_source_holds_the_bytes_in_order(tmp_path):
    model = bytes(range(256)) + b"\x00\xff"
    carrays.write_model_arrays(model, "demo", tmp_path)
    source = (tmp_path / "model_data.cc").read_text()
    assert "alignas(16) const unsigned char g_demo_model_data[] = {" in source
    assert f"const unsigned int g_demo_model_data_size = {len(model)};" in source
    body = source.split("{", 1)[1].split("}", 1)[0]
    assert bytes(int(h, 16) for h in re.findall(r"0x[0-9a-f]{2}", body)) == model
    header = (tmp_path / "model_data.h").read_text()
    assert header.startswith("#ifndef EDGEKIT_MODEL_DATA_H_\n#define EDGEKIT_MODEL_DATA_H_\n")
    assert "extern const unsigned char g_demo_model_data[];" in header
    assert "extern const unsigned int g_demo_model_data_size;" in header


@needs_arm_gcc
def test_arrays_compile_for_cortex_m_with_exact_bytes_and_alignment(tmp_path):
    model = np.random.default_rng(7).integers(0, 256, size=5001, dtype=np.uint8).tobytes()
    carrays.write_model_arrays(model, "random", tmp_path)
    obj = compile_arrays(tmp_path)
    data_section = ".rodata.g_random_model_data"
    assert section_bytes(obj, data_section) == model
    assert section_alignment(obj, data_section) == 16
    size = section_bytes(obj, ".rodata.g_random_model_data_size")
    assert int.from_bytes(size, "little") == len(model)


@needs_arm_gcc
def test_kws_arrays_compile(mlperf_dir, tmp_path):
    model = (mlperf_dir / "kws_ref_model.tflite").read_bytes()
    carrays.write_model_arrays(model, "kws_ref_model", tmp_path)
    obj = compile_arrays(tmp_path)
    assert section_bytes(obj, ".rodata.g_kws_ref_model_model_data") == model
