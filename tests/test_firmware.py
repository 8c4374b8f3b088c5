"""Rendering and building firmware projects: template variables, linker script, ELF sizes, errors."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import subprocess

import pytest

from edgekit import firmware, targets
from edgekit.errors import EdgekitError
from test_firmware_standin import INPUT_BYTES, OUTPUT_BYTES, make_artifact

needs_arm_gcc = pytest.mark.skipif(
    shutil.which("arm-none-eabi-gcc") is None or shutil.which("cmake") is None,
    reason="arm-none-eabi-gcc and cmake are needed to build firmware",
)


@pytest.fixture(scope="module")
def artifact(tmp_path_factory):
    return make_artifact(tmp_path_factory.mktemp("standin") / "artifact")


@pytest.fixture(scope="module")
def an386():
    return targets.get("mps2-an386")


def test_templates_are_found_and_aot_cortexm_serves_the_emulated_boards(an386):
    found = firmware.templates()
    assert "aot-cortexm" in found and "common" not in found
    assert firmware.choose_template(an386, "aot").name == "aot-cortexm"
    assert firmware.choose_template(targets.get("mps2-an500"), "aot").name == "aot-cortexm"


def test_no_template_for_a_board_without_a_driver_is_one_clear_error():
    # the Nano 33 BLE talks over USB CDC, which the bare-metal platform does not drive
    with pytest.raises(EdgekitError, match="no firmware template builds backend 'aot' for target arduino-nano-33-ble"):
        firmware.choose_template(targets.get("arduino-nano-33-ble"), "aot")


def test_render_fills_the_template_from_target_and_artifact(tmp_path, artifact, an386):
    project = firmware.render(artifact, an386, tmp_path / "fw")
    root = project.path
    assert (root / "model" / "standin.c").read_text() == (artifact.path / "standin.c").read_text()
    assert not list(root.rglob("*.in")), "every .in file is rendered and loses its suffix"
    config = (root / "common" / "ek_config.h").read_text()
    assert f"#define EK_INPUT_BYTES {INPUT_BYTES}u" in config
    assert f"#define EK_OUTPUT_BYTES {OUTPUT_BYTES}u" in config
    assert "#define EK_CORE_CLOCK_HZ 25000000u" in config
    assert "#define EK_USE_DWT 0" in config  # QEMU has no DWT
    assert f'#define EK_FIRMWARE_ID "{artifact.sha256[:16]}"' in config
    linker = (root / "common" / "cortexm" / "linker.ld").read_text()
    mm = an386.memory_map
    assert re.search(rf"FLASH \(rx\)\s*: ORIGIN = {hex(mm['flash_origin'])}, LENGTH = {hex(mm['flash_bytes'])}", linker)
    assert re.search(rf"RAM\s+\(rwx\) : ORIGIN = {hex(mm['ram_origin'])}, LENGTH = {hex(mm['ram_bytes'])}", linker)
    cmake = (root / "common" / "cortexm" / "ek_target.cmake").read_text()
    assert "-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16" in cmake
    glue = (root / "ek_model_aot.c").read_text()
    assert "standin_run_io(" in glue and "STANDIN_ACTIVATIONS_SIZE" in glue
    manifest = json.loads((root / firmware.PROJECT_MANIFEST).read_text())
    assert manifest["target"] == "mps2-an386" and manifest["artifact_sha256"] == artifact.sha256


def test_cpu_flags_follow_the_target():
    assert firmware.cpu_flags(targets.get("mps2-an500")) == "-mcpu=cortex-m7 -mthumb -mfloat-abi=hard -mfpu=fpv5-d16"
    m0 = dataclasses.replace(targets.get("mps2-an386"), cpu="Cortex-M0+", features=(), extras={})
    assert firmware.cpu_flags(m0) == "-mcpu=cortex-m0plus -mthumb -mfloat-abi=soft"


def test_a_real_board_times_with_the_dwt_cycle_counter(artifact):
    nucleo = targets.get("nucleo-l4r5zi")
    template = firmware.templates()["aot-cortexm"]
    values = firmware.variables(artifact, nucleo, template)
    assert values["use_dwt"] == "1"
    assert values["core_clock_hz"] == "120000000"
    assert values["flash_origin"] == "0x8000000"


def test_host_targets_get_no_firmware(artifact):
    with pytest.raises(EdgekitError, match="no firmware template|no memory map"):
        firmware.render(artifact, targets.get("host-cpu"), artifact.path.parent / "host-fw")
    assert not (artifact.path.parent / "host-fw").exists()


def test_unknown_variable_names_the_file_and_leaves_nothing_behind(tmp_path, artifact, an386, monkeypatch):
    fake_root = tmp_path / "templates"
    shutil.copytree(firmware.templates_dir(), fake_root)
    (fake_root / "aot-cortexm" / "broken.h.in").write_text("#define X ${no_such_variable}\n")
    monkeypatch.setattr(firmware, "templates_dir", lambda: fake_root)
    out = tmp_path / "fw"
    with pytest.raises(EdgekitError, match=r"broken\.h\.in: unknown template variable 'no_such_variable'"):
        firmware.render(artifact, an386, out)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["templates"], "no staging folder is left"


def test_render_refuses_to_overwrite_a_foreign_folder(tmp_path, artifact, an386):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(EdgekitError, match="not a firmware project"):
        firmware.render(artifact, an386, tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"


@needs_arm_gcc
def test_build_reports_sizes_from_the_elf(tmp_path, artifact, an386):
    project = firmware.render(artifact, an386, tmp_path / "fw")
    sizes = firmware.build(project)
    assert project.elf.is_file()
    # the ELF's own section headers agree with what build reports
    headers = subprocess.run(["arm-none-eabi-size", "-A", str(project.elf)], capture_output=True, text=True).stdout
    sections = {line.split()[0]: int(line.split()[1]) for line in headers.splitlines()[2:] if len(line.split()) >= 2 and line.split()[1].isdigit()}
    assert sizes.bss == sections[".bss"]
    assert sizes.bss >= INPUT_BYTES + OUTPUT_BYTES + 64  # the protocol's buffers and the activations
    assert sizes.flash_bytes == sizes.text + sizes.data and sizes.fits
    assert sizes.flash_budget == an386.flash_bytes
    assert sizes.stack_bytes == firmware.DEFAULT_STACK_BYTES and "16,384 B of stack" in sizes.summary()
    # the vector table's first word is the initial stack pointer: the top of the target's RAM
    nm = subprocess.run(["arm-none-eabi-nm", str(project.elf)], capture_output=True, text=True).stdout
    symbols = {parts[2]: int(parts[0], 16) for parts in (line.split() for line in nm.splitlines()) if len(parts) == 3}
    assert symbols["_estack"] == an386.memory_map["ram_origin"] + an386.memory_map["ram_bytes"]
    assert symbols["ek_vector_table"] == an386.memory_map["flash_origin"]
    assert json.loads((project.build_dir / "sizes.json").read_text())["bss"] == sizes.bss


@needs_arm_gcc
def test_a_model_that_overflows_ram_fails_the_build_with_the_reason(tmp_path, artifact, an386, monkeypatch):
    tiny = dataclasses.replace(an386, memory_map={**an386.memory_map, "ram_bytes": 4096})
    project = firmware.render(artifact, tiny, tmp_path / "fw")  # stack 16 KiB > 4 KiB of RAM
    with pytest.raises(EdgekitError, match="building the firmware failed.*(RAM overflow|overflow)"):
        firmware.build(project)


def test_build_of_a_folder_that_is_no_project_says_how_to_make_one(tmp_path):
    with pytest.raises(EdgekitError, match="edgekit firmware MODEL"):
        firmware.build(tmp_path)


MAP = """\
Discarded input sections

 .text.unused   0x00000000       0x40 CMakeFiles/firmware.dir/model/net.c.obj

Linker script and memory map

LOAD CMakeFiles/firmware.dir/model/net.c.obj

.text           0x00000000     0x2000
 *(.text*)
 .text.net_kernel_with_a_long_name
                0x000000c0       0x90 CMakeFiles/firmware.dir/model/net.c.obj
 .text.net_run  0x00000150       0x18 CMakeFiles/firmware.dir/model/net.c.obj
                0x00000150                net_run
 .text.reply    0x00000168       0x70 CMakeFiles/firmware.dir/common/ek_protocol.c.obj
 *(.rodata*)
 .rodata.ek_weights
                0x000001d8      0x400 CMakeFiles/firmware.dir/model/net.c.obj
 *fill*         0x000005d8        0x8 
 .rodata.str1.4
                0x000005e0        0xa CMakeFiles/firmware.dir/common/ek_protocol.c.obj

.data           0x20000000        0x4 load address 0x00002000
 .data.net_state
                0x20000000        0x4 CMakeFiles/firmware.dir/model/net.c.obj

/DISCARD/
 .data.net_never
                0x00000000       0x20 CMakeFiles/firmware.dir/model/net.c.obj

.bss            0x20000004      0x100 load address 0x00002004
 .bss.net_scratch
                0x20000004      0x100 CMakeFiles/firmware.dir/model/net.c.obj

OUTPUT(firmware.elf elf32-littlearm)
"""


def test_model_flash_counts_what_the_linker_kept_from_the_model_folder_in_flash(tmp_path):
    path = tmp_path / "firmware.map"
    path.write_text(MAP)
    # kept: 0x90 + 0x18 of code, 0x400 of constants, 0x4 of .data's initial values; not the
    # discarded sections (listed first, or under /DISCARD/), the fill, other folders' sections or .bss
    assert firmware.map_flash_by_folder(path) == 0x90 + 0x18 + 0x400 + 0x4
    assert firmware.map_flash_by_folder(path, "common") == 0x70 + 0xA
    assert firmware.map_flash_by_folder(tmp_path / "absent.map") is None
    sizes = firmware.Sizes(text=0x2000, data=4, bss=0x100, flash_budget=None, ram_budget=None,
                           model_flash_bytes=0x4AC, model_weights_bytes=1000)  # fmt: skip
    assert "the model's code and data 1,196 B of that flash (1.196x its 1,000 B of weights)" in sizes.summary()
