"""The SSH side of a device: connect with the host key checked, copy the device program, open its channel.

Host keys are checked against the user's known_hosts (or --known-hosts).
An unknown or changed key is refused with one line that says how to trust
it; nothing is ever accepted silently, so edgekit cannot be pointed at a
machine that merely answers on the address.

The device program (edgekit/link/device.py) is copied into the device's
cache under its content hash, once; after that each run costs one `test -f`.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import socket
import time
from collections import deque

from edgekit.errors import EdgekitError
from edgekit.link.host import DEVICE_PROGRAM, LinkFailure
from edgekit.remote.config import Device

CONNECT_TIMEOUT = 15.0
KEEPALIVE_SECONDS = 10
_STDERR_TAIL = 8192


class SshError(EdgekitError):
    """The device cannot be reached, or refused us, over SSH."""


def _paramiko():
    try:
        import paramiko
    except ImportError:
        raise SshError("reaching a device over SSH needs paramiko: pip install 'edgekit[ssh]'") from None
    return paramiko


def default_known_hosts() -> str:
    return os.path.join(os.path.expanduser("~"), ".ssh", "known_hosts")


def remote_path(path: str) -> str:
    """`path` for the device's shell: quoted, with a leading ~/ left for the device to expand."""
    if path == "~":
        return '"$HOME"'
    if path.startswith("~/"):
        return '"$HOME"/' + shlex.quote(path[2:])
    return shlex.quote(path)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class Connection:
    """One SSH connection to a device; commands and the device program run over it."""

    def __init__(self, device: Device, connect_timeout: float = CONNECT_TIMEOUT):
        paramiko = _paramiko()
        self.device = device
        self.where = str(device.address)
        known = device.known_hosts or default_known_hosts()
        client = paramiko.SSHClient()
        if os.path.isfile(known):
            try:
                client.load_host_keys(known)
            except (OSError, paramiko.SSHException) as exc:
                raise SshError(f"cannot read the known hosts file {known}: {_first_line(exc)}") from None
        # RejectPolicy: a key known_hosts does not list is refused, never added
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        address = device.address
        try:
            client.connect(
                address.host, port=address.port, username=address.user,
                key_filename=device.ssh_key, look_for_keys=device.ssh_key is None,
                allow_agent=device.ssh_key is None, timeout=connect_timeout,
                banner_timeout=connect_timeout, auth_timeout=connect_timeout,
            )
        except paramiko.BadHostKeyException:
            client.close()
            name = address.known_hosts_name()
            raise SshError(
                f"the host key of {self.where} is not the one {known} holds for {name}: refused "
                f"(if the device was reinstalled: ssh-keygen -f {known} -R '{name}' && "
                f"{address.keyscan()} >> {known})"
            ) from None
        except paramiko.AuthenticationException as exc:
            client.close()
            with_key = f"the key {device.ssh_key}" if device.ssh_key else "your SSH agent and default keys"
            raise SshError(f"{self.where} refused the login with {with_key} ({_first_line(exc)})") from None
        except paramiko.SSHException as exc:
            client.close()
            if "known_hosts" in str(exc):
                raise SshError(
                    f"{self.where} is not in {known}: its host key was not accepted (to trust it: "
                    f"{address.keyscan()} >> {known})"
                ) from None
            raise SshError(f"SSH to {self.where} failed: {_first_line(exc)}") from None
        except (OSError, EOFError) as exc:
            client.close()
            reason = "no answer" if isinstance(exc, socket.timeout) else _first_line(exc)
            raise SshError(f"cannot connect to {self.where} ({reason} within {connect_timeout:g} s)") from None
        client.get_transport().set_keepalive(KEEPALIVE_SECONDS)
        self.client = client

    def run(self, command: str, stdin: bytes = b"", timeout: float | None = None) -> tuple[int, str]:
        """Run a shell command on the device: (exit code, last line of its stderr)."""
        channel = Channel(self.client, command, self.where)
        try:
            if stdin:
                channel.write(stdin)
            channel.channel.shutdown_write()
            code = channel.wait(time.monotonic() + (timeout or self.device.timeout))
            return code, channel.last_error()
        finally:
            channel.close()

    def install_program(self) -> str:
        """The device program's path on the device, copied there only if that content is absent."""
        data = open(DEVICE_PROGRAM, "rb").read()
        digest = hashlib.sha256(data).hexdigest()
        folder = self.device.cache_dir.rstrip("/") + "/program"
        path = f"{folder}/{digest}.py"
        quoted, tmp = remote_path(path), remote_path(path) + '".tmp.$$"'
        if self.run(f"test -f {quoted}")[0] == 0:
            return path
        code, error = self.run(
            f"mkdir -p {remote_path(folder)} && cat > {tmp} && mv -f {tmp} {quoted} || {{ rm -f {tmp}; exit 1; }}",
            stdin=data,
        )
        if code != 0:
            raise SshError(
                f"cannot copy the device program into {self.device.cache_dir} on {self.where}"
                f"{': ' + error if error else ''} (exit code {code})"
            )
        return path

    def start_program(self, program: str) -> Channel:
        """The device program serving edgekit.link/1 on a channel of its own."""
        command = f"exec {shlex.quote(self.device.python)} {remote_path(program)} {remote_path(self.device.cache_dir)}"
        return Channel(self.client, command, f"the device program on {self.where}")

    def close(self) -> None:
        self.client.close()


class Channel:
    """A command's stdin/stdout on the device as an edgekit.link Transport."""

    def __init__(self, client, command: str, where: str):
        paramiko = _paramiko()
        self.where = where
        self._errors = deque(maxlen=64)
        self._error_bytes = 0
        try:
            self.channel = client.get_transport().open_session(timeout=CONNECT_TIMEOUT)
            self.channel.exec_command(command)
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise LinkFailure(f"{where}: the SSH connection failed ({_first_line(exc)})") from None

    def write(self, data: bytes) -> None:
        try:
            self.channel.sendall(data)
        except (OSError, EOFError) as exc:
            raise LinkFailure(f"{self.where}: the connection closed ({_first_line(exc)}){self._exit_note()}") from None
        except Exception as exc:  # paramiko.SSHException: the transport is gone
            raise LinkFailure(f"{self.where}: the connection failed ({_first_line(exc)})") from None

    def read(self, count: int, deadline: float) -> bytes:
        left = deadline - time.monotonic()
        if left <= 0:
            raise LinkFailure(f"{self.where} did not answer in time")
        self.channel.settimeout(left)
        try:
            data = self.channel.recv(count)
        except socket.timeout:
            raise LinkFailure(f"{self.where} did not answer in time (the device or the connection stopped)") from None
        except (OSError, EOFError) as exc:
            raise LinkFailure(f"{self.where}: the connection failed ({_first_line(exc)})") from None
        finally:
            self._drain_errors()
        if not data:
            raise LinkFailure(f"{self.where} ended{self._exit_note()}")
        return data

    def _drain_errors(self) -> None:
        # stderr shares the channel's window: read it, or a chatty runtime would stall the program
        while self.channel.recv_stderr_ready():
            chunk = self.channel.recv_stderr(4096)
            if not chunk:
                break
            self._errors.append(chunk)

    def last_error(self) -> str:
        self._drain_errors()
        lines = b"".join(self._errors).decode(errors="replace").strip().splitlines()
        return lines[-1].strip() if lines else ""

    def wait(self, deadline: float) -> int:
        """The command's exit code, once it has exited (within the deadline)."""
        while not self.channel.exit_status_ready():
            if time.monotonic() > deadline:
                raise LinkFailure(f"{self.where} did not finish in time")
            if self.channel.closed and not self.channel.exit_status_ready():
                raise LinkFailure(f"{self.where}: the connection closed")
            self._drain_errors()
            time.sleep(0.01)
        return self.channel.recv_exit_status()

    def _exit_note(self) -> str:
        deadline = time.monotonic() + 1.0
        while not self.channel.exit_status_ready() and not self.channel.closed and time.monotonic() < deadline:
            time.sleep(0.01)
        error = self.last_error()
        if self.channel.exit_status_ready():
            code = self.channel.recv_exit_status()
            if code != -1:
                return f" (exit code {code}{': ' + error if error else ''})"
        return f" (the connection closed{': ' + error if error else ''})"

    def close(self) -> None:
        self.channel.close()
