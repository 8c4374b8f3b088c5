"""The tensor arena a model needs, measured with the TFLM interpreter, not guessed.

The smallest arena with which TFLM's interpreter both allocates the model's
tensors and runs one inference is found by bisection. Each probe builds an
interpreter with `arena_size=N`; TFLM usually reports a too-small arena by
raising RuntimeError ("TFLM failed to allocate tensors") after printing its
reasons on stderr from C, but some failed allocations crash the process
instead (a per-channel FULLY_CONNECTED model segfaults with a 16 KiB arena:
a temporary tensor fails to allocate and preparation goes on with it). So
the probes run in a child Python process: a probe that kills the child
counts as "does not run with this arena", the next probe gets a fresh child,
and TFLM's C-level messages stay out of the user's terminal.

What the number means on the target:
- The host interpreter is 64-bit: TFLM's persistent structures hold pointers
  (TfLiteEvalTensor, node and registration records, the allocator itself),
  which are larger than on a 32-bit Cortex-M, and the host interpreter uses
  TFLM's recording allocator, which is larger than the plain one. So the
  measured figure is an upper bound for a 32-bit MCU with the same kernels
  (KWS DS-CNN: 24,272 B measured here against 22,820 B used on a Cortex-M4).
- The margin covers alignment: TFLM aligns the arena start to 16 bytes and
  loses up to 15 bytes when the buffer it is given is not 16-aligned, so the
  arena written into the firmware is the measured size rounded up to 16
  bytes, plus 16.
- Optimized kernels (CMSIS-NN) may ask for scratch buffers the reference
  kernels do not; the 64-bit overestimate has covered them on the MLPerf Tiny
  models, but a model dominated by such kernels may need more: the firmware
  reports a failed allocation at start-up (`ek_model_init` fails).
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import tempfile
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

from edgekit.errors import EdgekitError, MissingDependencyError

ALIGNMENT = 16
_START = 16 * 1024
_CEILING = 256 * 1024 * 1024  # no MCU model needs more; beyond it the failure is not the arena
_PROBE_TIMEOUT_S = 300  # one allocation and one inference


@dataclass(frozen=True)
class ArenaMeasurement:
    measured_bytes: int  # smallest arena the host interpreter allocated and invoked with
    margin_bytes: int  # added for alignment (see module docs)
    persistent_bytes: int | None  # TFLM's tail: allocations that live as long as the interpreter
    nonpersistent_bytes: int | None  # TFLM's head: the planned activation buffers
    probes: int

    @property
    def arena_bytes(self) -> int:
        """The arena to give the firmware: measured plus margin."""
        return self.measured_bytes + self.margin_bytes

    def to_json(self) -> dict:
        return asdict(self) | {"arena_bytes": self.arena_bytes}


def alignment_margin(measured: int) -> int:
    """Bytes to add to `measured`: round up to 16, then one more 16 for an unaligned start."""
    rounded = -(-measured // ALIGNMENT) * ALIGNMENT
    return rounded - measured + ALIGNMENT


def measure_arena(model_path: Path) -> ArenaMeasurement:
    """Bisect the smallest working arena for `model_path` (a validated .tflite).

    Probes run in a child process (see the module docs); a probe that kills
    the child counts as "does not run with this arena" and the next probe
    gets a fresh child.
    """
    model_path = Path(model_path)
    if importlib.util.find_spec("tflite_micro") is None:  # the child would only fail on it
        raise MissingDependencyError("tflite_micro", "tflm")
    with _ProbeWorker(model_path) as worker:
        low, high = 0, _START  # once a working size is known: low fails, high works
        while not worker.works(high):
            if high >= _CEILING:
                raise EdgekitError(
                    f"{model_path}: TFLM cannot allocate and run the model even with a "
                    f"{_CEILING // (1024 * 1024)} MiB arena{worker.last_reason()}"
                )
            low, high = high, high * 2
        while high - low > 1:
            middle = (low + high) // 2
            if worker.works(middle):
                high = middle
            else:
                low = middle
        breakdown = worker.breakdown(high)
        probes = worker.probes
    return ArenaMeasurement(
        measured_bytes=high,
        margin_bytes=alignment_margin(high),
        persistent_bytes=breakdown.get("persistent_bytes"),
        nonpersistent_bytes=breakdown.get("nonpersistent_bytes"),
        probes=probes,
    )


class _ProbeWorker:
    """A child Python process answering "does the model run with an N-byte arena?" per line."""

    def __init__(self, model_path: Path):
        self.model_path = model_path
        self.probes = 0
        self.crashes = 0
        self._stderr = tempfile.TemporaryFile(mode="w+b")
        self._proc: subprocess.Popen | None = None

    def __enter__(self) -> _ProbeWorker:
        return self

    def __exit__(self, *exc) -> None:
        self._stop()
        self._stderr.close()

    def _start(self) -> subprocess.Popen:
        if self._proc is None or self._proc.poll() is not None:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "edgekit.tflm.arena", str(self.model_path)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, text=True,
            )
        return self._proc

    def _stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def _ask(self, request: str) -> str | None:
        """Send one request line; the reply line, or None when the child died or hung."""
        proc = self._start()
        timer = threading.Timer(_PROBE_TIMEOUT_S, proc.kill)
        timer.start()
        try:
            proc.stdin.write(request + "\n")
            proc.stdin.flush()
            reply = proc.stdout.readline()
        except (BrokenPipeError, OSError):
            reply = ""
        finally:
            timer.cancel()
        if not reply:
            self._stop()
            return None
        return reply.strip()

    def works(self, size: int) -> bool:
        self.probes += 1
        reply = self._ask(f"probe {size}")
        if reply is None:
            # TFLM kills the process on some failed allocations instead of reporting them
            self.crashes += 1
            return False
        if reply.startswith("error "):
            raise EdgekitError(f"{self.model_path}: {reply[len('error '):]}")
        return reply == "ok"

    def breakdown(self, size: int) -> dict:
        reply = self._ask(f"breakdown {size}")
        return json.loads(reply) if reply and reply.startswith("{") else {}

    def last_reason(self) -> str:
        """TFLM's last complaint on stderr, as a suffix for an error message."""
        self._stderr.seek(0)
        lines = [
            line.strip()
            for line in self._stderr.read().decode(errors="replace").splitlines()
            if line.strip() and "Input index" not in line
        ]
        if self.crashes and self.crashes == self.probes:
            return ": TFLM crashed on every attempt"
        return f" (TFLM: {lines[-1]})" if lines else ""


# ---- the child process: everything below runs with TFLM loaded ----


def allocates_and_invokes(model: bytes, arena_size: int) -> bool:
    """True when TFLM's interpreter allocates `model` in `arena_size` bytes and runs it once."""
    import numpy as np
    from tflite_micro.python.tflite_micro import runtime

    try:
        interpreter = runtime.Interpreter.from_bytes(model, arena_size=arena_size)
        index = 0
        while True:
            try:
                details = interpreter.get_input_details(index)
            except (RuntimeError, IndexError, ValueError):
                break
            interpreter.set_input(np.zeros(details["shape"], details["dtype"]), index)
            index += 1
        interpreter.invoke()
    except RuntimeError:
        return False
    return True


_ALLOCATION_LINE = re.compile(r"Arena allocation (head|tail) (\d+) bytes")


def _breakdown(model: bytes, arena_size: int) -> dict:
    """TFLM's own account of the arena (head: planned tensors; tail: persistent data)."""
    import os

    from tflite_micro.python.tflite_micro import runtime

    interpreter = runtime.Interpreter.from_bytes(model, arena_size=arena_size)
    # print_allocations writes from C to fd 2: capture it at the descriptor level
    with tempfile.TemporaryFile(mode="w+b") as sink:
        saved = os.dup(2)
        sys.stderr.flush()
        os.dup2(sink.fileno(), 2)
        try:
            interpreter.print_allocations()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        sink.seek(0)
        text = sink.read().decode(errors="replace")
    found = {kind: int(n) for kind, n in _ALLOCATION_LINE.findall(text)}
    return {"nonpersistent_bytes": found.get("head"), "persistent_bytes": found.get("tail")}


def _serve(model_path: str) -> int:
    """Answer probe/breakdown requests, one per stdin line, one reply line each."""
    model = Path(model_path).read_bytes()
    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        size = int(argument)
        try:
            if command == "probe":
                reply = "ok" if allocates_and_invokes(model, size) else "fail"
            else:
                reply = json.dumps(_breakdown(model, size))
        except Exception as exc:  # TFLM's Python layer failing on the file, not on the arena size
            reply = f"error TFLM cannot load the model ({type(exc).__name__}: {exc})"
        print(reply, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_serve(sys.argv[1]))
