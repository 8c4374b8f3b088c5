"""The host side of edgekit.link/1: a Runner whose model runs in another process.

A `Transport` is any byte stream to a device-side program (a pipe to a child
process, an SSH channel, a socket) with a bound on how long a read may wait.
`LinkRunner` speaks the protocol over it: it sends the artifact's files into
the device's content-hash cache (only those the device lacks), loads the
model, infers, times runs on the device's clock and reads the device's
environment and memory. Every failure is one EdgekitError line.
"""

from __future__ import annotations

import hashlib
import os
import selectors
import subprocess
import time
from typing import Any, Protocol

import numpy as np

from edgekit.core import Artifact, Runner, TensorSpec, with_quantization_of
from edgekit.errors import EdgekitError
from edgekit.link.device import LinkError, pack_arrays, read_frame, unpack_arrays, write_frame

DEVICE_PROGRAM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "device.py")


class LinkFailure(EdgekitError):
    """The device-side program died, hung, or broke the protocol."""


class Transport(Protocol):
    where: str

    def write(self, data: bytes) -> None: ...

    def read(self, count: int, deadline: float) -> bytes: ...

    def close(self) -> None: ...


class ChildProcess:
    """A device-side program in a child process on this machine, over its stdin/stdout pipes."""

    def __init__(self, argv: list[str], where: str = "a child process", env: dict | None = None):
        self.where = where
        self.process = subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        self._selector = selectors.DefaultSelector()
        self._selector.register(self.process.stdout, selectors.EVENT_READ)

    def write(self, data: bytes) -> None:
        try:
            self.process.stdin.write(data)
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            raise LinkFailure(f"{self.where} closed its input{self._exit_note()}") from None

    def read(self, count: int, deadline: float) -> bytes:
        left = deadline - time.monotonic()
        if left <= 0 or not self._selector.select(timeout=left):
            raise LinkFailure(f"{self.where} did not answer in time")
        data = os.read(self.process.stdout.fileno(), count)
        if not data:
            raise LinkFailure(f"{self.where} ended{self._exit_note()}")
        return data

    def _exit_note(self) -> str:
        code = self.process.poll()
        if code is None:
            return ""
        err = (self.process.stderr.read() or b"").decode(errors="replace").strip().splitlines()
        return f" (exit code {code}{': ' + err[-1] if err else ''})"

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            stream.close()
        self._selector.close()


def python_device(python: str, cache_dir: str, env: dict | None = None) -> ChildProcess:
    """edgekit's device-side Python program, run by `python` on this machine."""
    return ChildProcess([python, DEVICE_PROGRAM, cache_dir], where=f"the device program ({python})", env=env)


class Session:
    """Request/response over a transport, each answer within `timeout` seconds."""

    def __init__(self, transport: Transport, timeout: float = 60.0):
        self.transport = transport
        self.timeout = timeout

    def call(self, op: str, payload: bytes = b"", timeout: float | None = None, **fields) -> tuple[dict, bytes]:
        deadline = time.monotonic() + (timeout or self.timeout)
        try:
            write_frame(self.transport.write, {"op": op, **fields}, payload)
            header, data = read_frame(lambda n: self.transport.read(n, deadline))
        except LinkError as exc:
            raise LinkFailure(f"{self.transport.where}: {exc}") from None
        if not header.get("ok"):
            raise EdgekitError(f"{self.transport.where} refused `{op}`: {header.get('error', 'no reason given')}")
        return header, data

    def send_file(self, path: str) -> str:
        """The file's path in the device's content-hash cache, sending it only when the device lacks it."""
        data = open(path, "rb").read()
        digest = hashlib.sha256(data).hexdigest()
        suffix = os.path.splitext(path)[1]
        found, _ = self.call("has", sha256=digest, suffix=suffix)
        if found.get("path"):
            return found["path"]
        stored, _ = self.call("put", data, sha256=digest, suffix=suffix)
        return stored["path"]

    def close(self) -> None:
        try:
            self.call("bye", timeout=5.0)
        except EdgekitError:
            pass
        finally:
            self.transport.close()


def _spec(data: dict) -> TensorSpec:
    return TensorSpec(
        name=data["name"], shape=tuple(data["shape"]), dtype=data["dtype"],
        scale=data.get("scale"), zero_point=data.get("zero_point"),
    )


class LinkRunner(Runner):
    """Runs an artifact in a device-side program; times runs on the device's own clock."""

    memory_scope = "device-process"

    def __init__(self, session: Session, artifact: Artifact, runtime: str, threads: int | None = None,
                 options: dict | None = None, file: str | None = None):
        """`file`: where the device already finds the model (a path or URL it opens itself), so
        nothing is sent; by default the artifact's primary file goes into the device's cache."""
        self.session = session
        try:
            hello, _ = session.call("hello")
            if runtime not in hello.get("runtimes", []):
                raise EdgekitError(
                    f"{session.transport.where} has no {runtime} runtime (it has: "
                    f"{', '.join(hello.get('runtimes', [])) or 'none'})"
                )
            self.env = session.call("env")[0]["env"]
            remote = file or session.send_file(str(artifact.primary_path))
            loaded, _ = session.call("load", runtime=runtime, file=remote, threads=threads, options=options or {})
        except BaseException:
            session.close()
            raise
        self.name = loaded["runner"]
        self.details: dict[str, Any] = loaded.get("details", {})
        self.inputs = with_quantization_of([_spec(s) for s in loaded["inputs"]], artifact.inputs)
        self.outputs = with_quantization_of([_spec(s) for s in loaded["outputs"]], artifact.outputs)
        self._last_ms: float | None = None

    def _infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        described, payload = pack_arrays([(s.name, feed[s.name]) for s in self.inputs])
        header, data = self.session.call("infer", payload, inputs=described)
        self._last_ms = header.get("ms")
        return dict(unpack_arrays(header["outputs"], data))

    def device_timing(self) -> dict[str, float] | None:
        return None if self._last_ms is None else {"ms": float(self._last_ms)}

    def environment(self) -> dict[str, Any] | None:
        return self.env | {"runner_details": self.details}

    def time_on_device(self, feed: dict[str, np.ndarray], runs: int, warmup: int) -> list[float]:
        """`runs` timings (ms) of `feed`, after `warmup` runs, measured by the device's clock."""
        self.infer(feed)
        # bounded by what the runs should take (10x the first one), so a device that stops answering
        # mid-loop fails in about that time, not in a fixed second per run
        per_run_s = max(self._last_ms or 1.0, 0.1) * 10 / 1e3
        budget = self.session.timeout + (runs + warmup) * per_run_s
        header, _ = self.session.call("time", runs=runs, warmup=warmup, timeout=budget)
        if header.get("breakdown_ms"):  # a GPU runtime's host-to-device / compute / device-to-host split
            self.details["breakdown_ms"] = header["breakdown_ms"]
        self.details["clock"] = header.get("clock")
        return [float(ms) for ms in header["samples_ms"]]

    def memory(self) -> dict[str, Any]:
        return self.session.call("memory")[0]["memory"]

    def close(self) -> None:
        self.session.close()
