"""Put a firmware on a board with the tool the target names (`flash_tool.tool`).

pyocd (Nucleo, nRF boards), arduino-cli (Arduino boards), esptool (ESP32),
and qemu (the emulated boards: "flashing" starts the emulator). A missing
tool or board is one line saying which and what to do.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from edgekit.errors import EdgekitError

FLASH_TIMEOUT_S = 300
# what each tool prints when no board answers, to say "no board" instead of a raw log
_NO_BOARD = ("no connected debug probes", "no probe", "no device", "failed to connect", "no serial data received", "could not open port", "no such file or directory")


def _tool(name: str, install: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise EdgekitError(f"{name} not found: {install}")
    return path


def _run(cmd: list[str], tool: str, target, port: str | None) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=FLASH_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise EdgekitError(f"{tool} did not finish flashing {target.name} within {FLASH_TIMEOUT_S} s") from None
    if proc.returncode == 0:
        return
    output = (proc.stderr + proc.stdout).strip()
    last = output.splitlines()[-1].strip() if output else f"exit code {proc.returncode}"
    if any(marker in output.lower() for marker in _NO_BOARD):
        where = f" at {port}" if port else ""
        raise EdgekitError(f"{tool} found no {target.name} board{where}: connect it over USB and check the port ({last})")
    raise EdgekitError(f"{tool} could not flash {target.name}: {last}")


def flash_command(firmware: Path, target, port: str | None = None) -> list[str]:
    """The command line that flashes `firmware` (an ELF, or a sketch folder for arduino-cli)."""
    spec = target.flash_tool or {}
    tool = spec.get("tool")
    firmware = Path(firmware)
    if tool == "pyocd":
        return [_tool("pyocd", "install it with `pip install 'edgekit[firmware]'`"), "flash", "-t", spec["target"], str(firmware)]
    if tool == "esptool":
        exe = shutil.which("esptool.py") or _tool("esptool", "install it with `pip install 'edgekit[firmware]'`")
        image = firmware.with_suffix(".bin")
        if not image.is_file():
            raise EdgekitError(f"esptool writes a binary image: {image} not found next to {firmware.name}")
        cmd = [exe, "--chip", spec.get("chip", "auto")]
        if port:
            cmd += ["--port", port]
        return cmd + ["write_flash", str(spec.get("offset", "0x0")), str(image)]
    if tool == "arduino-cli":
        if not port:
            raise EdgekitError(f"arduino-cli needs the board's port: give --port (e.g. /dev/ttyACM0) for {target.name}")
        sketch = firmware if firmware.is_dir() else firmware.parent.parent
        return [
            _tool("arduino-cli", "install it from https://arduino.github.io/arduino-cli/"),
            "upload", "-p", port, "--fqbn", spec["fqbn"], "--input-dir", str(sketch / "build"), str(sketch),
        ]  # fmt: skip
    raise EdgekitError(f"target {target.name} names flash tool {tool!r}, which edgekit cannot drive (pyocd, arduino-cli, esptool, qemu)")


def _tcp_port(port: str | None) -> int | None:
    """The emulated board's TCP port from `5555` or `socket://127.0.0.1:5555` (None: any free one)."""
    if not port:
        return None
    text = port.rsplit(":", 1)[-1]
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise EdgekitError(f"--port {port}: the emulated board listens on a TCP port: give e.g. 5555")
    return int(text)


def flash(firmware: Path, target, port: str | None = None):
    """Flash a real board; for an emulated target, start QEMU and return the running QemuBoard."""
    firmware = Path(firmware)
    if not firmware.exists():
        raise EdgekitError(f"firmware not found: {firmware}")
    if (target.flash_tool or {}).get("tool") == "qemu":
        from edgekit.device.qemu import QemuBoard

        return QemuBoard(firmware, target.flash_tool["machine"], port=_tcp_port(port)).start()
    cmd = flash_command(firmware, target, port)
    _run(cmd, Path(cmd[0]).name, target, port)
    return None
