"""A real OpenSSH server on loopback, and device-side virtual environments, for the remote tests.

The server runs as this user on a free port of 127.0.0.1 with a temporary
host key and one authorized client key; tests get the files a user would
pass (--ssh-key, --known-hosts) and can kill its connections.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

SSHD = "/usr/sbin/sshd"


def missing() -> str | None:
    """Why a loopback sshd cannot run here, or None."""
    if not os.access(SSHD, os.X_OK):
        return f"OpenSSH server not installed ({SSHD}; apt-get install openssh-server)"
    if shutil.which("ssh-keygen") is None:
        return "ssh-keygen not found (apt-get install openssh-client)"
    try:
        import paramiko  # noqa: F401
    except ImportError:
        return "paramiko not installed (pip install 'edgekit[ssh]')"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


class LoopbackSshd:
    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.host_key = keygen(self.folder / "host_key")
        self.client_key = keygen(self.folder / "client_key")
        (self.folder / "authorized_keys").write_text((self.folder / "client_key.pub").read_text())
        self.port = _free_port()
        self.known_hosts = self.folder / "known_hosts"
        self.known_hosts.write_text(self.known_hosts_line(self.host_key))
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # sshd's privilege separation directory
        self.log = open(self.folder / "sshd.log", "wb")
        self.process = subprocess.Popen(
            [SSHD, "-D", "-e", "-f", "/dev/null", "-p", str(self.port), "-h", str(self.host_key),
             "-o", "ListenAddress=127.0.0.1", "-o", f"AuthorizedKeysFile={self.folder / 'authorized_keys'}",
             "-o", "StrictModes=no", "-o", "PidFile=none", "-o", "PermitRootLogin=yes"],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"sshd exited: {(self.folder / 'sshd.log').read_text()[-500:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("sshd did not start listening within 10 s")

    def known_hosts_line(self, key: Path) -> str:
        kind, blob = Path(f"{key}.pub").read_text().split()[:2]
        return f"[127.0.0.1]:{self.port} {kind} {blob}\n"

    @property
    def host(self) -> str:
        import getpass

        return f"{getpass.getuser()}@127.0.0.1:{self.port}"

    def flags(self, known_hosts: Path | None = None) -> list[str]:
        return ["--host", self.host, "--ssh-key", str(self.client_key),
                "--known-hosts", str(known_hosts or self.known_hosts)]

    def sessions(self) -> list[int]:
        """Every process under the server: its per-connection children and what they run."""
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                except OSError:
                    continue
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
        found, todo = [], list(children.get(self.process.pid, []))
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo += children.get(pid, [])
        return found

    def device_programs(self) -> list[int]:
        """The device programs running (not the shells about to start them)."""
        found = []
        for pid in self.sessions():
            argv = _cmdline(pid).split(b"\0")
            if len(argv) > 1 and Path(argv[0].decode(errors="replace")).name.startswith("python") and b"/program/" in argv[1]:
                found.append(pid)
        return found

    def connections(self) -> list[int]:
        """The server's per-connection processes."""
        return [pid for pid in self.sessions() if _cmdline(pid).startswith(b"sshd")]

    def kill_sessions(self, sig: int = signal.SIGKILL) -> list[int]:
        """Drop every connection (and its device program) the way a pulled cable or a crashed device does.

        Only those: a login shell's own helpers finish on their own (killing them
        could leave their lock files behind in the user's home).
        """
        pids = self.connections() + self.device_programs()
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        return pids

    def stop(self) -> None:
        self.kill_sessions()
        self.process.terminate()
        self.process.wait(10)
        self.log.close()


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def device_venv(folder: Path, packages: list[str]) -> tuple[Path | None, str]:
    """A virtual environment with only `packages` (built once, reused): (its python, or None and why)."""
    python = folder / "bin" / "python"
    done = folder / ".complete"
    if done.is_file() and python.exists():
        return python, ""
    shutil.rmtree(folder, ignore_errors=True)
    made = subprocess.run([sys.executable, "-m", "venv", str(folder)], capture_output=True, text=True)
    if made.returncode != 0:
        return None, f"python -m venv failed: {(made.stderr or made.stdout).strip().splitlines()[-1:]}"
    installed = subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *packages],
                               capture_output=True, text=True, timeout=900)
    if installed.returncode != 0:
        lines = (installed.stderr or installed.stdout).strip().splitlines()
        return None, f"pip install {' '.join(packages)} failed: {lines[-1] if lines else installed.returncode}"
    done.write_text(" ".join(packages) + "\n")
    return python, ""
