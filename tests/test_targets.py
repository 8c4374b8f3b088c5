"""Target descriptors: the shipped files, the validator, the machine facts, the CLI."""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from edgekit import targets
from edgekit.core import QUANTIZATIONS
from edgekit.errors import UnknownChoiceError
from edgekit.resources import targets_dir
from edgekit.targets import TargetError, load_file, load_folder
from clitools import run_cli_here as run_cli

REQUIRED_TARGETS = {
    "host-cpu", "rpi4", "rpi5", "jetson-nano", "jetson-orin-nano", "jetson-agx-orin",
    "nucleo-l4r5zi", "nucleo-h7a3zi", "nrf52840dk", "arduino-nano-33-ble", "esp32-s3",
    "mps2-an386", "mps2-an500", "node-wasm", "browser-wasm",
}

# ------------------------------------------------------------ shipped targets


def test_every_required_target_ships_and_loads():
    assert REQUIRED_TARGETS <= set(targets.names())
    assert targets.names() == sorted(targets.names())
    assert [t.name for t in targets.all_targets()] == targets.names()
    for target in targets.all_targets():
        assert target.source.name == f"{target.name}.yaml"
        assert target.quantization in QUANTIZATIONS
        assert target.default_backend == target.backends[0]


def test_aliases_resolve_and_unknown_names_list_the_choices():
    assert targets.get("mcu").name == "nucleo-l4r5zi"
    assert targets.get("mcu") is targets.get("nucleo-l4r5zi")
    assert "mcu" not in targets.names()
    with pytest.raises(UnknownChoiceError) as info:
        targets.get("nucleo-f401")
    assert "nucleo-f401" in str(info.value)
    assert "mps2-an386" in str(info.value) and "rpi5" in str(info.value)


def test_backend_order_and_default_quantization_follow_the_target_kind():
    for target in targets.all_targets():
        if target.is_mcu:
            assert target.quantization == "int8", target.name
            assert set(target.backends) == {"aot", "tflm"}, target.name
            # the emulated boards prefer aot: its firmware needs no third-party checkout
            expected_first = "aot" if target.runner == "qemu" else "tflm"
            assert target.default_backend == expected_first, target.name
        else:
            assert target.quantization == "none", target.name
            assert target.memory_map == {} and target.flash_tool is None, target.name
    for name in ("jetson-nano", "jetson-orin-nano", "jetson-agx-orin"):
        assert targets.get(name).default_backend == "tensorrt"
        assert "cuda" in targets.get(name).features
    assert targets.get("host-cpu").backends == ("tflite", "onnx", "aot", "tflm")
    assert targets.get("node-wasm").runner == "node"
    assert targets.get("browser-wasm").runner == "browser"


def test_mcu_targets_carry_what_the_firmware_needs():
    expected_tools = {
        "nucleo-l4r5zi": {"tool": "pyocd", "target": "stm32l4r5zitx"},
        "nucleo-h7a3zi": {"tool": "pyocd", "target": "stm32h7a3zitxq"},
        "nrf52840dk": {"tool": "pyocd", "target": "nrf52840"},
        "arduino-nano-33-ble": {"tool": "arduino-cli", "fqbn": "arduino:mbed_nano:nano33ble"},
        "esp32-s3": {"tool": "esptool", "chip": "esp32s3"},
        "mps2-an386": {"tool": "qemu", "machine": "mps2-an386"},
        "mps2-an500": {"tool": "qemu", "machine": "mps2-an500"},
    }
    for name, tool in expected_tools.items():
        target = targets.get(name)
        assert target.flash_tool == tool
        assert target.extras["uart_baud"] == 115200
        memory = target.memory_map
        assert memory["flash_bytes"] <= target.flash_bytes
        assert memory["ram_bytes"] <= target.ram_bytes


def test_datasheet_figures_of_the_real_boards():
    l4 = targets.get("nucleo-l4r5zi")
    assert (l4.cpu, l4.clock_mhz, l4.flash_bytes, l4.ram_bytes) == ("Cortex-M4F", 120, 2 << 20, 640 << 10)
    assert l4.memory_map == {"flash_origin": 0x08000000, "flash_bytes": 2 << 20,
                             "ram_origin": 0x20000000, "ram_bytes": 640 << 10}
    h7 = targets.get("nucleo-h7a3zi")
    assert (h7.cpu, h7.clock_mhz, h7.flash_bytes) == ("Cortex-M7", 280, 2 << 20)
    nrf = targets.get("nrf52840dk")
    assert (nrf.clock_mhz, nrf.flash_bytes, nrf.ram_bytes) == (64, 1 << 20, 256 << 10)
    esp = targets.get("esp32-s3")
    assert (esp.arch, esp.cores, esp.clock_mhz) == ("xtensa", 2, 240)
    assert targets.get("rpi5").cpu == "Cortex-A76" and targets.get("rpi4").cpu == "Cortex-A72"
    assert targets.get("jetson-agx-orin").cores == 12


def test_targets_are_hashable_so_they_can_key_caches():
    assert len({targets.get("mcu"), targets.get("nucleo-l4r5zi"), targets.get("rpi4")}) == 2


def test_to_json_round_trips_through_json():
    for target in targets.all_targets():
        data = json.loads(json.dumps(target.to_json()))
        assert data["name"] == target.name
        assert data["backends"] == list(target.backends)
        assert data["memory_map"] == target.memory_map


def test_host_cpu_facts_come_from_this_machine():
    host = targets.get("host-cpu")
    assert host.cores == os.cpu_count()
    machine = platform.machine().lower()
    assert host.arch == {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
    assert host.ram_bytes > 64 << 20
    assert host.clock_mhz > 0 and host.cpu and host.cpu != "auto"
    # the file says so, and does not pretend to know
    assert yaml.safe_load(host.source.read_text())["cores"] == "auto"


def test_loading_targets_imports_nothing_heavy():
    code = (
        "import sys, edgekit.targets as t; t.all_targets(); t.get('mcu');"
        "heavy = [m for m in ('tensorflow', 'mlflow', 'onnxruntime', 'onnx') if m in sys.modules];"
        "print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# ------------------------------------------------- emulated boards vs QEMU


def _qemu_memory_tree(machine: str) -> str:
    qemu = shutil.which("qemu-system-arm")
    if qemu is None:
        pytest.skip("qemu-system-arm is not installed")
    result = subprocess.run(
        [qemu, "-M", machine, "-display", "none", "-S", "-serial", "none", "-monitor", "stdio"],
        input="info mtree\nquit\n", capture_output=True, text=True, timeout=60,
    )
    return result.stdout


def _regions(tree: str) -> list[tuple[int, int, str, str]]:
    found = []
    for line in tree.splitlines():
        match = re.match(r"\s*([0-9a-f]+)-([0-9a-f]+) \(prio -?\d+, ([^)]+)\): (.*)", line)
        if match:
            start, end, kind, name = match.groups()
            found.append((int(start, 16), int(end, 16), kind, name))
    return found


@pytest.mark.parametrize("name", ["mps2-an386", "mps2-an500"])
def test_emulated_board_memory_map_matches_qemu(name):
    target = targets.get(name)
    regions = _regions(_qemu_memory_tree(target.flash_tool["machine"]))
    assert regions, "qemu printed no memory tree"

    def backed_by_ram(origin: int, size: int) -> bool:
        return any(kind == "ram" and start <= origin and origin + size - 1 <= end
                   for start, end, kind, _ in regions)

    memory = target.memory_map
    assert backed_by_ram(memory["flash_origin"], memory["flash_bytes"])
    assert backed_by_ram(memory["ram_origin"], memory["ram_bytes"])
    assert backed_by_ram(target.extras["psram"]["origin"], target.extras["psram"]["bytes"])
    assert any(start == target.extras["uart_base"] and "uart" in region
               for start, _, _, region in regions)


# -------------------------------------------------------------- validation

GOOD = {
    "name": "board",
    "description": "A test board",
    "kind": "mcu",
    "arch": "armv7e-m",
    "cpu": "Cortex-M4F",
    "cores": 1,
    "clock_mhz": 80,
    "flash_bytes": 1 << 20,
    "ram_bytes": 128 << 10,
    "backends": ["tflm", "aot"],
    "quantization": "int8",
    "runner": "serial",
    "features": ["dsp", "fpu"],
    "memory_map": {"flash_origin": 0x08000000, "flash_bytes": 1 << 20,
                   "ram_origin": 0x20000000, "ram_bytes": 128 << 10},
    "flash_tool": {"tool": "pyocd", "target": "stm32l476rgtx"},
    "extras": {"uart_baud": 115200},
    "aliases": ["board-alias"],
}


def write_target(folder: Path, changes: dict, name: str = "board", drop: tuple = ()) -> Path:
    data = {k: v for k, v in (GOOD | changes).items() if k not in drop}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_a_good_descriptor_loads_with_every_field(tmp_path):
    target = load_file(write_target(tmp_path, {}))
    assert target.name == "board" and target.is_mcu
    assert target.backends == ("tflm", "aot") and target.features == ("dsp", "fpu")
    assert target.memory_map["ram_origin"] == 0x20000000
    assert target.clock_mhz == 80.0 and isinstance(target.clock_mhz, float)


def test_error_names_file_and_field_with_the_bad_value(tmp_path):
    path = write_target(tmp_path, {"ram_bytes": -3})
    with pytest.raises(TargetError) as info:
        load_file(path)
    assert str(info.value) == f"{path}: field 'ram_bytes': must be a positive integer, got -3"


def test_shipped_files_are_named_relative_to_the_targets_folder():
    shipped = targets_dir() / "rpi4.yaml"
    assert targets.load_file(shipped).name == "rpi4"
    assert targets._label(shipped) == "targets/rpi4.yaml"


@pytest.mark.parametrize(
    "changes, drop, field_, phrase",
    [
        ({"cores": 0}, (), "cores", "positive integer"),
        ({"cores": True}, (), "cores", "positive integer"),
        ({"clock_mhz": "fast"}, (), "clock_mhz", "positive number"),
        ({"quantization": "int4"}, (), "quantization", "none, fp16, dynamic, int8"),
        ({"runner": "jtag"}, (), "runner", "host, qemu, serial"),
        ({"kind": "phone"}, (), "kind", "host, sbc, jetson, mcu, web"),
        ({"backends": []}, (), "backends", "at least one"),
        ({"backends": ["tf-lite"]}, (), "backends", "tf-lite"),
        ({"backends": ["tflm", "tflm"]}, (), "backends", "more than once"),
        ({"name": "other"}, (), "name", "file name 'board'"),
        ({"cpu": "auto"}, (), "cpu", "only for targets of kind host or web"),
        ({"runner": "ssh"}, (), "runner", "qemu or serial"),
        ({}, ("memory_map",), "memory_map", "required for an MCU"),
        ({"memory_map": {"flash_origin": 0, "flash_bytes": 1}}, (), "memory_map", "missing: ram_origin"),
        ({"memory_map": GOOD["memory_map"] | {"ram_bytes": 1 << 30}}, (), "memory_map", "exceeds"),
        ({"memory_map": GOOD["memory_map"] | {"ram_origin": 0x08000010}}, (), "memory_map", "overlap"),
        ({"memory_map": GOOD["memory_map"] | {"flash_origin": -1}}, (), "memory_map.flash_origin", "address"),
        ({"flash_tool": {"tool": "pyocd"}}, (), "flash_tool.target", "pyocd needs"),
        ({"flash_tool": {"tool": "jlink"}}, (), "flash_tool.tool", "pyocd, arduino-cli, esptool, qemu"),
        ({}, ("flash_bytes",), "flash_bytes", "required for an MCU"),
        ({"kind": "sbc", "runner": "ssh", "flash_tool": None}, (), "memory_map", "only for MCU"),
        ({"aliases": ["Bad Alias"]}, (), "aliases", "Bad Alias"),
    ],
)
def test_each_invalid_field_is_named(tmp_path, changes, drop, field_, phrase):
    path = write_target(tmp_path, changes, drop=drop)
    with pytest.raises(TargetError) as info:
        load_file(path)
    message = str(info.value)
    assert message.startswith(f"{path}: field '{field_}':"), message
    assert phrase in message, message


def test_unknown_and_missing_fields_are_listed(tmp_path):
    with pytest.raises(TargetError, match=r"unknown field\(s\) 'colour', 'ram'"):
        load_file(write_target(tmp_path, {"ram": 1, "colour": "red"}))
    with pytest.raises(TargetError, match=r"missing field\(s\) 'cpu', 'runner'"):
        load_file(write_target(tmp_path, {}, drop=("cpu", "runner")))


def test_broken_yaml_and_non_mappings_are_reported(tmp_path):
    broken = tmp_path / "board.yaml"
    broken.write_text("name: board\nbackends: [tflm\n")
    with pytest.raises(TargetError, match=r"board.yaml: not valid YAML at line \d+"):
        load_file(broken)
    broken.write_text("- just\n- a list\n")
    with pytest.raises(TargetError, match="must be a mapping of fields, got list"):
        load_file(broken)
    with pytest.raises(TargetError, match="cannot read"):
        load_file(tmp_path / "absent.yaml")


def test_duplicate_names_and_aliases_across_files_are_rejected(tmp_path):
    write_target(tmp_path, {})
    write_target(tmp_path, {"name": "second", "aliases": ["board-alias"]}, name="second")
    with pytest.raises(TargetError, match="'board-alias' is already defined by .*board.yaml"):
        load_folder(tmp_path)
    write_target(tmp_path, {"name": "second", "aliases": ["board"]}, name="second")
    with pytest.raises(TargetError, match="'board' is already defined"):
        load_folder(tmp_path)
    write_target(tmp_path, {"name": "second", "aliases": []}, name="second")
    assert sorted(load_folder(tmp_path)) == ["board", "second"]


def test_every_shipped_file_survives_a_strict_reload(tmp_path):
    # the shipped folder validates as a whole (names, aliases unique)
    for path in targets_dir().glob("*.yaml"):
        shutil.copy(path, tmp_path / path.name)
    assert sorted(load_folder(tmp_path)) == targets.names()


# --------------------------------------------------------------------- CLI


def test_cli_lists_every_target_in_an_aligned_table(capsys):
    code, out, _ = run_cli(capsys, "targets")
    assert code == 0
    lines = out.splitlines()
    header = lines[0].split()
    assert header == ["name", "kind", "cpu", "clock", "flash", "RAM", "backends", "runner"]
    table = lines[2:2 + len(targets.names())]
    assert [line.split()[0] for line in table] == targets.names()
    # aligned: the kind column starts at the same offset on every row
    assert len({line.index(" " + targets.get(line.split()[0]).kind + " ") for line in table}) == 1
    l4 = next(line for line in table if line.startswith("nucleo-l4r5zi "))
    for cell in ("mcu", "Cortex-M4F", "120 MHz", "2 MiB", "640 KiB", "tflm,aot", "serial"):
        assert cell in l4
    assert "mcu -> nucleo-l4r5zi" in out


def test_cli_show_prints_every_field_and_json(capsys):
    code, out, _ = run_cli(capsys, "targets", "show", "mps2-an386")
    assert code == 0
    assert "0x00000000..0x003FFFFF (4 MiB)" in out and "0x20000000..0x203FFFFF (4 MiB)" in out
    assert "qemu (machine=mps2-an386)" in out
    assert "uart_base: 0x40004000" in out and "origin: 0x21000000" in out
    code, out, _ = run_cli(capsys, "targets", "show", "mcu", "--json")
    assert code == 0
    assert json.loads(out) == targets.get("nucleo-l4r5zi").to_json()
    code, out, _ = run_cli(capsys, "targets", "--json")
    assert [t["name"] for t in json.loads(out)] == targets.names()


def test_cli_unknown_target_is_one_line_and_exit_1(capsys):
    code, out, err = run_cli(capsys, "targets", "show", "nucleo-f401")
    assert code == 1
    assert err.startswith("error: unknown target 'nucleo-f401': choose one of ")
    assert len(err.strip().splitlines()) == 1
