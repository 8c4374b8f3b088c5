"""The tensor arena a model needs, measured with the TFLM interpreter, not guessed.

The smallest arena with which TFLM's interpreter both allocates the model's
tensors and runs one inference is found by bisection. Each probe builds an
interpreter with `arena_size=N`; TFLM reports a too-small arena by raising
RuntimeError ("TFLM failed to allocate tensors") after printing its reasons
on stderr from C. The bisection runs in a child Python process: that keeps
TFLM's C-level messages out of the user's terminal, and a kernel that aborts
the process fails one measurement with a clear message instead of killing
the caller.

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

import json
import re
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from edgekit.errors import EdgekitError

ALIGNMENT = 16
_START = 16 * 1024
_CEILING = 256 * 1024 * 1024  # no MCU model needs more; beyond it the failure is not the arena
_PROBE_TIMEOUT_S = 600


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
    """Bisect the smallest working arena for `model_path` (a validated .tflite) in a child process."""
    cmd = [sys.executable, "-m", "edgekit.tflm.arena", str(model_path)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=_PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise EdgekitError(
            f"{model_path}: measuring the TFLM arena took over {_PROBE_TIMEOUT_S} s; "
            "the model is too large for a microcontroller"
        ) from None
    if done.returncode != 0:
        raise EdgekitError(f"{model_path}: {_failure_reason(done)}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if "error" in result:
        raise EdgekitError(f"{model_path}: {result['error']}")
    measured = result["measured_bytes"]
    return ArenaMeasurement(
        measured_bytes=measured,
        margin_bytes=alignment_margin(measured),
        persistent_bytes=result.get("persistent_bytes"),
        nonpersistent_bytes=result.get("nonpersistent_bytes"),
        probes=result["probes"],
    )


def _failure_reason(done: subprocess.CompletedProcess) -> str:
    if done.returncode < 0:
        return (
            f"the TFLM interpreter crashed (signal {-done.returncode}) while allocating the model: "
            "TFLM cannot run it"
        )
    last = [line for line in done.stderr.strip().splitlines() if line.strip()]
    return "measuring the TFLM arena failed: " + (last[-1] if last else f"exit {done.returncode}")


# ---- the child process: everything below runs with TFLM loaded ----


def _tflm_messages_suffix(lines: list[str]) -> str:
    useful = [line.strip() for line in lines if line.strip()]
    return f" (TFLM: {useful[-1]})" if useful else ""


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
    import tempfile

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
    return {
        "nonpersistent_bytes": found.get("head"),
        "persistent_bytes": found.get("tail"),
    }


def bisect_arena(model: bytes) -> dict:
    """Smallest arena size (bytes) that works, as a JSON-able dict; {"error": ...} when none does."""
    probes = 0

    def works(size: int) -> bool:
        nonlocal probes
        probes += 1
        return allocates_and_invokes(model, size)

    low, high = 0, _START  # invariant once a working size is found: low fails, high works
    while not works(high):
        low = high
        if high >= _CEILING:
            return {
                "error": f"TFLM cannot allocate and run the model even with a "
                f"{_CEILING // (1024 * 1024)} MiB arena: an operator failed to prepare "
                "or the model is far too large for a microcontroller"
            }
        high *= 2
    while high - low > 1:
        middle = (low + high) // 2
        if works(middle):
            high = middle
        else:
            low = middle
    return {"measured_bytes": high, "probes": probes, **_breakdown(model, high)}


def _main(argv: list[str]) -> int:
    model = Path(argv[0]).read_bytes()
    try:
        result = bisect_arena(model)
    except Exception as exc:  # TFLM's Python layer failing on the file, not on the arena size
        result = {"error": f"TFLM cannot load the model ({type(exc).__name__}: {exc})"}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
