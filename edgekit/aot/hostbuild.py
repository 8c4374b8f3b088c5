"""Build a bundle with the host C compiler into a shared library and call it via ctypes.

Used by the aot backend's host runner, the tests and the host benchmark.
The library is cached beside the sources, keyed by the hash of the source
and the flags, so a second load costs nothing.
"""

from __future__ import annotations

import ctypes
import hashlib
from functools import cache
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from edgekit.errors import EdgekitError

HOST_CFLAGS = ("-std=c99", "-O3", "-march=native", "-fPIC", "-shared", "-Wall", "-Wextra", "-Werror")


def host_compiler() -> str:
    for cc in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if cc and shutil.which(cc):
            return cc
    raise EdgekitError("no C compiler found: install gcc (or set CC) to run aot bundles on the host")


@cache
def compiler_version(cc: str) -> str:
    out = subprocess.run([cc, "--version"], capture_output=True, text=True)
    return out.stdout.splitlines()[0] if out.returncode == 0 and out.stdout else cc


@cache
def machine_identity() -> str:
    """The CPU a -march=native build is for: an artifact folder may move between machines."""
    flags = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                flags = line
                break
    except OSError:
        pass
    return f"{platform.machine()} {platform.processor()} {flags}"


def build_shared_library(source: Path, cflags: tuple[str, ...] = HOST_CFLAGS) -> Path:
    """Compile `source` (a bundle .c with its .h beside it) into a cached shared library.

    The cache key covers the sources, the compiler, the flags and this CPU.
    """
    source = Path(source)
    cc = host_compiler()
    key = hashlib.sha256(
        source.read_bytes()
        + source.with_suffix(".h").read_bytes()
        + " ".join((cc, compiler_version(cc), *cflags, machine_identity())).encode()
    ).hexdigest()[:16]
    library = source.parent / f".{source.stem}-{key}.so"
    if library.is_file():
        return library
    fd, tmp = tempfile.mkstemp(dir=source.parent, prefix=f".{source.stem}-", suffix=".so.tmp")
    os.close(fd)
    try:
        result = subprocess.run(
            [cc, *cflags, "-I", str(source.parent), "-o", tmp, str(source), "-lm"],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise EdgekitError(
                f"the host C compiler failed on {source.name}: {result.stderr.strip()[:2000]}"
            )
        os.replace(tmp, library)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return library


class HostBundle:
    """A compiled bundle loaded in this process: `run(*inputs) -> [outputs]`."""

    def __init__(
        self,
        library: Path,
        name: str,
        input_shapes: list[tuple[tuple[int, ...], str]],
        output_shapes: list[tuple[tuple[int, ...], str]],
        arena_bytes: int,
    ):
        self.library_path = Path(library)
        self._lib = ctypes.CDLL(str(library))
        self._fn = getattr(self._lib, f"{name}_run_io")
        self._fn.restype = ctypes.c_int
        self._fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        self.input_shapes = input_shapes
        self.output_shapes = output_shapes
        # 16-byte aligned arena (the bundle's MEMORY_ALIGNMENT)
        raw = np.zeros(arena_bytes + 64, dtype=np.uint8)
        start = (-raw.ctypes.data) % 64
        self._arena_raw = raw
        self.arena = raw[start : start + max(arena_bytes, 1)]
        self._outputs = [np.zeros(s, dtype=d) for s, d in output_shapes]
        self._out_ptrs = (ctypes.c_void_p * len(self._outputs))(*[o.ctypes.data for o in self._outputs])
        # built once and refilled per call: ctypes objects cost microseconds to make,
        # which would show in the timing of a model that runs in a few
        self._in_ptrs = (ctypes.c_void_p * max(1, len(input_shapes)))()
        self._arena_ptr = self.arena.ctypes.data

    def run(self, *inputs: np.ndarray) -> list[np.ndarray]:
        arrays = []
        for x, (shape, dtype) in zip(inputs, self.input_shapes):
            a = np.ascontiguousarray(x, dtype=dtype)
            if a.size != int(np.prod(shape)):
                raise EdgekitError(f"input has {a.size} elements, the bundle takes {int(np.prod(shape))}")
            arrays.append(a)
        for k, a in enumerate(arrays):
            self._in_ptrs[k] = a.ctypes.data
        rc = self._fn(self._in_ptrs, self._out_ptrs, self._arena_ptr)
        if rc != 0:
            raise EdgekitError(f"the bundle returned {rc}")
        return [o.copy() for o in self._outputs]

    def run_raw(self, *inputs: np.ndarray) -> None:
        """One call with no checks or copies (for timing): inputs must be contiguous and typed."""
        for k, a in enumerate(inputs):
            self._in_ptrs[k] = a.ctypes.data
        self._fn(self._in_ptrs, self._out_ptrs, self._arena_ptr)


def load_bundle(bundle, directory: Path, cflags: tuple[str, ...] = HOST_CFLAGS) -> HostBundle:
    """Build and load a `CompiledBundle` already written into `directory`."""
    library = build_shared_library(Path(directory) / f"{bundle.name}.c", cflags)
    return HostBundle(
        library,
        bundle.name,
        [(t.shape, t.dtype) for t in bundle.inputs],
        [(t.shape, t.dtype) for t in bundle.outputs],
        bundle.arena_bytes,
    )
