"""Firmware for the real boards (Nucleo-L4R5ZI, Nucleo-H7A3ZI-Q, nRF52840-DK): rendered, built and linked.

No board is attached here, so nothing runs: these tests check what the
toolchain can, on real aot bundles. The expected UART facts are the boards'
(user manuals and reference manuals), not read back from the code.
"""

from __future__ import annotations

import dataclasses
import re
import shutil
import struct
import subprocess

import pytest

from edgekit import firmware, targets
from edgekit.errors import EdgekitError
from test_firmware_standin import make_artifact

needs_arm_gcc = pytest.mark.skipif(
    shutil.which("arm-none-eabi-gcc") is None or shutil.which("cmake") is None,
    reason="arm-none-eabi-gcc and cmake are needed to build firmware",
)

# board -> what its debugger's virtual COM port is wired to
BOARDS = {
    "nucleo-l4r5zi": dict(
        driver="stm32", soc="stm32l4", base=0x40008000, irq=70, clock=120_000_000, lpuart=1,
        tx=(6, 7), rx=(6, 8), af=8,  # LPUART1 on PG7/PG8, AF8; PLL at 120 MHz
    ),
    "nucleo-h7a3zi": dict(
        driver="stm32", soc="stm32h7", base=0x40004800, irq=39, clock=64_000_000, lpuart=0,
        tx=(3, 8), rx=(3, 9), af=7,  # USART3 on PD8/PD9, AF7; reset HSI 64 MHz
    ),
    "nrf52840dk": dict(
        driver="nrf", soc=None, base=0x40002000, irq=2, clock=64_000_000, lpuart=0,
        tx=(0, 6), rx=(0, 8), af=0,  # UART0 on P0.06/P0.08
    ),
}
DRIVER_SYMBOLS = {
    "stm32": {"ek_uart_init", "ek_uart_rx_irq", "ek_platform_putc", "ek_platform_getc", "ek_soc_init", "ek_soc_gpio_base"},
    "nrf": {"ek_uart_init", "ek_uart_rx_irq", "ek_platform_putc", "ek_platform_getc"},
}


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    return make_artifact(tmp_path_factory.mktemp("standin") / "artifact")


@pytest.mark.parametrize("board", BOARDS)
def test_aot_and_tflm_templates_serve_the_board(board):
    target = targets.get(board)
    assert firmware.choose_template(target, "aot").name == "aot-cortexm"
    assert firmware.choose_template(target, "tflm").name == "tflm-cmake"
    assert firmware.uart_driver(target) == BOARDS[board]["driver"]


def test_a_board_whose_uart_has_no_driver_is_still_one_clear_error():
    # the Nano 33 BLE talks over USB CDC, which the bare-metal platform does not drive
    with pytest.raises(EdgekitError, match="no firmware template builds backend 'aot' for target arduino-nano-33-ble"):
        firmware.choose_template(targets.get("arduino-nano-33-ble"), "aot")


def test_the_emulated_boards_keep_the_cmsdk_driver(standin, tmp_path):
    project = firmware.render(standin, targets.get("mps2-an386"), tmp_path / "fw")
    cmake = (project.path / "common" / "cortexm" / "ek_target.cmake").read_text()
    assert "set(EK_UART_SOURCES uart_cmsdk.c)" in cmake


@pytest.mark.parametrize("board", BOARDS)
def test_rendered_config_carries_the_boards_uart(board, standin, tmp_path):
    facts = BOARDS[board]
    project = firmware.render(standin, targets.get(board), tmp_path / "fw")
    common = project.path / "common"
    config = (common / "ek_config.h").read_text()
    assert f"#define EK_UART_BASE {hex(facts['base'])}u" in config
    assert "#define EK_UART_BAUD 115200u" in config
    assert re.search(rf"#define EK_UART_RX_IRQ {facts['irq']}\b", config)
    assert f"#define EK_CORE_CLOCK_HZ {facts['clock']}u" in config  # what DWT cycles are divided by
    assert "#define EK_USE_DWT 1" in config
    board_h = (common / "cortexm" / "ek_board.h").read_text()
    assert f"#define EK_UART_CLOCK_HZ {facts['clock']}u" in board_h  # APB1 undivided: the core's clock
    assert f"#define EK_UART_IS_LPUART {facts['lpuart']}" in board_h
    assert f"#define EK_UART_TX_PORT {facts['tx'][0]}\n#define EK_UART_TX_PIN {facts['tx'][1]}\n" in board_h
    assert f"#define EK_UART_RX_PORT {facts['rx'][0]}\n#define EK_UART_RX_PIN {facts['rx'][1]}\n" in board_h
    assert f"#define EK_UART_AF {facts['af']}\n" in board_h
    sources = f"uart_{facts['driver']}.c" + (f" soc_{facts['soc']}.c" if facts["soc"] else "")
    assert f"set(EK_UART_SOURCES {sources})" in (common / "cortexm" / "ek_target.cmake").read_text()


def test_a_pin_that_is_no_pin_name_is_one_clear_error(standin, tmp_path):
    nucleo = targets.get("nucleo-l4r5zi")
    broken = dataclasses.replace(nucleo, extras={**nucleo.extras, "uart_pins": {"tx": "G7", "rx": "PG8", "af": 8}})
    with pytest.raises(EdgekitError, match=r"extras\.uart_pins\.tx 'G7' is no pin name"):
        firmware.render(standin, broken, tmp_path / "fw")
    assert not (tmp_path / "fw").exists()


# ---------------------------------------------------------------- the ELF


def _tool(name: str, *args: str) -> str:
    return subprocess.run([f"arm-none-eabi-{name}", *args], capture_output=True, text=True, check=True).stdout


def check_elf(project, target, facts) -> firmware.Sizes:
    """The linked image boots on the board: vectors at the flash origin, SP in RAM, the UART's IRQ wired."""
    elf = str(project.elf)
    mm = target.memory_map
    symbols = {}
    for line in _tool("nm", elf).splitlines():
        parts = line.split()
        if len(parts) == 3:
            symbols[parts[2]] = int(parts[0], 16)
    assert DRIVER_SYMBOLS[facts["driver"]] <= symbols.keys()
    assert "ek_timer_init" in symbols and "ek_protocol_poll" in symbols
    assert symbols["ek_vector_table"] == mm["flash_origin"]
    entry = int(re.search(r"Entry point address:\s+(0x[0-9a-f]+)", _tool("readelf", "-h", elf)).group(1), 16)
    assert entry & ~1 == symbols["Reset_Handler"]
    # the image as flashed: word 0 the initial SP, word 1 the reset vector, 16 + irq the UART's handler
    image = (project.build_dir / "firmware.bin").read_bytes()
    words = struct.unpack_from(f"<{17 + facts['irq']}I", image)
    assert mm["ram_origin"] < words[0] <= mm["ram_origin"] + mm["ram_bytes"] and words[0] % 8 == 0
    assert words[1] == symbols["Reset_Handler"] | 1  # Thumb
    assert words[16 + facts["irq"]] == symbols["ek_uart_rx_irq"] | 1
    sizes = firmware.elf_sizes(project.elf, target)
    assert sizes.fits and sizes.flash_bytes <= mm["flash_bytes"] and len(image) == sizes.flash_bytes
    assert sizes.ram_bytes + int(project.manifest["variables"]["stack_bytes"]) <= mm["ram_bytes"]
    return sizes


def _aot_firmware(model, board, tmp_path):
    from edgekit import pipeline

    artifact = pipeline.convert(str(model), target=board, backend="aot").artifact
    project = firmware.render(artifact, targets.get(board), tmp_path / f"fw-{board}")
    firmware.build(project)
    return artifact, project


@pytest.fixture(scope="module")
def tiny_int8(tmp_path_factory):
    pytest.importorskip("tflite_micro")
    from tinymodels import tiny_int8_cnn_bytes

    path = tmp_path_factory.mktemp("tiny") / "tiny_cnn.tflite"
    path.write_bytes(tiny_int8_cnn_bytes(seed=3))
    return path


@needs_arm_gcc
@pytest.mark.parametrize("board", BOARDS)
def test_tiny_int8_aot_firmware_links_for_the_board(board, tiny_int8, tmp_path):
    artifact, project = _aot_firmware(tiny_int8, board, tmp_path)
    sizes = check_elf(project, targets.get(board), BOARDS[board])
    assert sizes.bss >= artifact.info["arena_bytes"]  # the bundle's activations are in RAM


@needs_arm_gcc
@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("model, weights_bytes", [("kws_ref_model.tflite", 50_000), ("ad01_int8.tflite", 250_000)])
def test_mlperf_tiny_aot_firmware_links_for_the_board(board, model, weights_bytes, mlperf_dir, tmp_path):
    artifact, project = _aot_firmware(mlperf_dir / model, board, tmp_path)
    sizes = check_elf(project, targets.get(board), BOARDS[board])
    assert sizes.text > weights_bytes  # the int8 weights are linked in, not dropped


@needs_arm_gcc
def test_an_l4_clock_the_firmware_cannot_set_fails_the_build_with_the_reason(standin, tmp_path):
    nucleo = targets.get("nucleo-l4r5zi")
    at_80 = dataclasses.replace(nucleo, extras={**nucleo.extras, "firmware_clock_hz": 80_000_000})
    project = firmware.render(standin, at_80, tmp_path / "fw")
    with pytest.raises(EdgekitError, match="building the firmware failed.*120 MHz \\(PLL\\) or 4 MHz"):
        firmware.build(project)
