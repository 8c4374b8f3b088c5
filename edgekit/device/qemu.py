"""The emulated board: qemu-system-arm with UART0 on a loopback socket.

`-icount shift=0,sleep=off` makes one instruction one nanosecond of virtual
time, so the firmware's SysTick counts instructions deterministically (one
tick per 40 instructions at the MPS2's 25 MHz). `wait=on` holds the machine
until the host connects, so the boot banner is never missed. The process is
always killed: on `stop()`, on leaving the `with` block, and at interpreter
exit for anything left running.
"""

from __future__ import annotations

import atexit
import shutil
import signal
import socket
import sys
import subprocess
import tempfile
import time
import weakref
from pathlib import Path

from edgekit.errors import EdgekitError

QEMU = "qemu-system-arm"

_running: weakref.WeakSet = weakref.WeakSet()


@atexit.register
def _kill_leftovers() -> None:
    for board in list(_running):
        board.stop()


def _die_with_parent() -> None:
    """In the child before exec: Linux kills QEMU when the process that started it dies."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: atexit and stop() remain


def _port_listens(port: int) -> bool:
    try:
        table = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return False
    local = f"0100007F:{port:04X}"  # 127.0.0.1 in the kernel's byte order
    return any(fields[1] == local and fields[3] == "0A" for fields in (line.split() for line in table))  # 0A: LISTEN


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def qemu_command(elf: Path, machine: str, port: int) -> list[str]:
    return [
        QEMU,
        "-M", machine,
        "-display", "none",
        "-monitor", "none",
        "-serial", f"tcp:127.0.0.1:{port},server=on,wait=on,nodelay=on",  # nodelay: replies are written byte by byte
        "-icount", "shift=0,sleep=off",
        "-kernel", str(elf),
    ]  # fmt: skip


class QemuBoard:
    """One emulated board running `elf`; `url` is its UART for `serial_for_url`."""

    def __init__(self, elf: Path, machine: str, port: int | None = None):
        self.elf = Path(elf)
        self.machine = machine
        self.fixed_port = port  # None: a free port is chosen
        self.port: int | None = None
        self._proc: subprocess.Popen | None = None
        self._log = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise EdgekitError("the emulated board is not running")
        return f"socket://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self, ready_timeout: float = 10.0) -> QemuBoard:
        """Start QEMU and wait until its serial socket listens."""
        if shutil.which(QEMU) is None:
            raise EdgekitError(f"{QEMU} not found: install QEMU (Debian/Ubuntu: apt install qemu-system-arm)")
        if not self.elf.is_file():
            raise EdgekitError(f"firmware not found: {self.elf}")
        for attempt in range(3):  # another process may take the free port before QEMU binds it
            self._launch()
            deadline = time.monotonic() + ready_timeout
            while not self._listening():
                problem = self.problem()
                if problem:
                    self.stop()
                    if "in use" in problem and attempt < 2 and self.fixed_port is None:
                        break
                    raise EdgekitError(problem)
                if time.monotonic() > deadline:
                    self.stop()
                    raise EdgekitError(f"{QEMU} -M {self.machine} did not open its serial port within {ready_timeout:.0f} s")
                time.sleep(0.02)
            else:
                return self
        raise AssertionError("unreachable")

    def _launch(self) -> None:
        self._log = tempfile.TemporaryFile()
        self.port = self.fixed_port or free_port()
        self._proc = subprocess.Popen(
            qemu_command(self.elf, self.machine, self.port),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        _running.add(self)

    def _listening(self) -> bool:
        # QEMU says so on stderr before it blocks in accept(); probing with a
        # connection would consume the one connection wait=on waits for, so
        # otherwise ask the kernel (Linux) whether the port listens
        self._log.seek(0)
        return b"waiting for connection" in self._log.read() or _port_listens(self.port)

    def output(self) -> str:
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def problem(self) -> str | None:
        """Why the board is gone (QEMU exited), or None while it runs."""
        if self._proc is None:
            return "the emulated board was never started"
        code = self._proc.poll()
        if code is None:
            return None
        lines = [line for line in self.output().splitlines() if line.strip() and "waiting for connection" not in line]
        detail = f": {lines[-1].strip()}" if lines else ""
        return f"{QEMU} -M {self.machine} exited with code {code}{detail}"

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        _running.discard(self)
        if self._log is not None and self._proc is not None and self._proc.poll() is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> QemuBoard:
        return self.start() if self._proc is None else self

    def __exit__(self, *exc) -> None:
        self.stop()
