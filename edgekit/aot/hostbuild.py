"""Build a bundle with the host C compiler into a shared library and call it via ctypes.

Used by the aot backend's host runner, the tests and the host benchmark.
The library is cached beside the sources, keyed by the hash of the source
and the flags, so a second load costs nothing.
"""

from __future__ import annotations

import ctypes
import functools
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

#: -march=native picks the kernels' x86 path from the CPU's own features: the AVX-512 VNNI
#: lanes (EK_LANES), else AVX2 (EK_X86_CONV, EK_FC_LANES), else portable C; the cache key
#: of a build holds the CPU's flags (machine_identity)
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
    """A compiled bundle loaded in this process.

    `call(*inputs)` is the per-inference path: every ctypes object is made
    once, here, so a call is one foreign call and nothing else. An input that
    is already C-contiguous with the bundle's dtype is read where it lies (its
    pointer is taken once per array object, which the bundle keeps alive);
    any other is copied into a buffer of the bundle's own. Outputs are written
    into arrays allocated here, which `call` returns and the next call
    rewrites; `run` returns copies that stay the caller's.
    """

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
        fn = getattr(self._lib, f"{name}_run_io")
        fn.restype = ctypes.c_int
        # no argtypes: the arguments are ctypes objects already, so nothing is converted per call
        fn.argtypes = None
        self.input_shapes = input_shapes
        self.output_shapes = output_shapes
        # 64-byte aligned arena (the bundle asks for MEMORY_ALIGNMENT, 16)
        raw = np.zeros(arena_bytes + 64, dtype=np.uint8)
        start = (-raw.ctypes.data) % 64
        self._arena_raw = raw
        self.arena = raw[start : start + max(arena_bytes, 1)]
        self.outputs = [np.zeros(s, dtype=d) for s, d in output_shapes]
        self._staging = [np.zeros(s, dtype=d) for s, d in input_shapes]
        self._counts = [int(np.prod(s, dtype=np.int64)) for s, _ in input_shapes]
        self._dtypes = [np.dtype(d) for _, d in input_shapes]
        self._in_ptrs = (ctypes.c_void_p * max(1, len(input_shapes)))(*[a.ctypes.data for a in self._staging])
        self._out_ptrs = (ctypes.c_void_p * max(1, len(self.outputs)))(*[o.ctypes.data for o in self.outputs])
        #: the array whose memory each input pointer names (None: the staging buffer)
        self._fed: list[np.ndarray | None] = [None] * len(input_shapes)
        self._call = functools.partial(fn, self._in_ptrs, self._out_ptrs, ctypes.c_void_p(self.arena.ctypes.data))

    def _point_at(self, k: int, x: np.ndarray) -> None:
        """Make input k's pointer name `x` itself, or a copy of it in the staging buffer."""
        x = np.asarray(x)
        if x.size != self._counts[k]:
            raise EdgekitError(f"input has {x.size} elements, the bundle takes {self._counts[k]}")
        if x.dtype == self._dtypes[k] and x.flags.c_contiguous:
            self._in_ptrs[k] = x.ctypes.data
            self._fed[k] = x
            return
        staging = self._staging[k]
        np.copyto(staging, np.reshape(x, staging.shape), casting="unsafe")
        if self._fed[k] is not None:
            self._in_ptrs[k] = staging.ctypes.data
            self._fed[k] = None

    def call(self, *inputs: np.ndarray) -> list[np.ndarray]:
        """One inference; returns the bundle's output arrays, valid until the next call."""
        fed = self._fed
        for k, x in enumerate(inputs):
            if x is not fed[k]:
                self._point_at(k, x)
        rc = self._call()
        if rc != 0:
            raise EdgekitError(f"the bundle returned {rc}")
        return self.outputs

    def run(self, *inputs: np.ndarray) -> list[np.ndarray]:
        """One inference; returns copies of the outputs."""
        return [o.copy() for o in self.call(*inputs)]


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
