"""A line-oriented byte pipe over pyserial: `/dev/ttyACM0` and `socket://127.0.0.1:PORT` alike.

`serial.serial_for_url` opens a real UART and QEMU's serial socket with the
same code, so what the tests run against the emulated board is what users
run against hardware.
"""

from __future__ import annotations

import time

from edgekit._lazy import require
from edgekit.errors import EdgekitError


class SerialLink:
    """`write(bytes)` and `readline(timeout) -> bytes | None` over one port."""

    def __init__(self, url: str, baud: int = 115200, open_timeout: float = 0.0):
        serial = require("serial", "firmware")
        self.url = url
        self._partial = b""
        deadline = time.monotonic() + open_timeout
        while True:
            try:
                self._port = serial.serial_for_url(url, baudrate=baud, timeout=0.1, write_timeout=10)
                break
            except (serial.SerialException, OSError, ValueError) as exc:
                if time.monotonic() >= deadline:
                    raise EdgekitError(f"cannot open {url}: {exc} (is the board connected and the port right?)") from None
                time.sleep(0.05)
        self._serial = serial

    def write(self, data: bytes) -> None:
        try:
            self._port.write(data)
            self._port.flush()
        except (self._serial.SerialException, OSError) as exc:
            raise EdgekitError(f"writing to {self.url} failed: {exc}") from None

    def readline(self, timeout: float) -> bytes | None:
        """One line including its newline, or None if none completed within `timeout`.

        A partial line is kept for the next call, so a slow line is not split.
        """
        deadline = time.monotonic() + timeout
        while True:
            self._port.timeout = max(0.0, min(0.1, deadline - time.monotonic()))
            try:
                chunk = self._port.read_until(b"\n")
            except (self._serial.SerialException, OSError) as exc:
                raise EdgekitError(f"reading from {self.url} failed: {exc}") from None
            self._partial += chunk
            if self._partial.endswith(b"\n"):
                line, self._partial = self._partial, b""
                return line
            if time.monotonic() >= deadline:
                return None

    def drain(self) -> None:
        """Forget whatever the board sent before now."""
        self._partial = b""
        self._port.reset_input_buffer()

    def close(self) -> None:
        try:
            self._port.close()
        except Exception:  # closing a dead socket must not hide the error that killed it
            pass
