"""The aot bundle's view: its debug build, which copies every operator's output out.

The debug build is compiled from the artifact's .tflite with the artifact's
features and rounding, so it runs the code the bundle runs; its normal half
is compared with the artifact's own .c, and a difference (an edited bundle,
another compiler version) is reported rather than hidden.
"""

from __future__ import annotations

import ctypes
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgekit.debug.capture import Capture, Captured, per_tensor_quantization, stack, to_input
from edgekit.errors import EdgekitError


@dataclass
class DebugBuild:
    """A debug bundle written into a folder: `<name>.c`/`.h` and the compiler's facts about it."""

    folder: Path
    bundle: object  # edgekit.aot.compiler.CompiledBundle, compiled with debug=True
    model: object  # the reader's Model of the .tflite

    @property
    def source_path(self) -> Path:
        return self.folder / f"{self.bundle.name}.c"


def write_debug_build(tflite: Path, folder: Path, *, name: str = "model", features=frozenset()) -> DebugBuild:
    """Compile `tflite` with the debug option into `folder`."""
    from edgekit.aot.compiler import compile_model
    from edgekit.debug import tflite_graph

    model = tflite_graph.read(tflite)
    bundle = compile_model(tflite, name=name, features=set(features), debug=True)
    bundle.write(folder)
    return DebugBuild(Path(folder), bundle, model)


def run_debug_build(build: DebugBuild, samples: list[list[np.ndarray]], cflags=None) -> Capture:
    """Build the debug bundle with the host compiler and capture every operator output per sample."""
    from edgekit.aot.hostbuild import HOST_CFLAGS, build_shared_library

    bundle, model = build.bundle, build.model
    library = ctypes.CDLL(str(build_shared_library(build.source_path, tuple(cflags or HOST_CFLAGS))))
    run = getattr(library, f"{bundle.name}_run_debug")
    run.restype = ctypes.c_int
    run.argtypes = [ctypes.c_void_p] * 4

    arena_raw = np.zeros(bundle.arena_bytes + 64, dtype=np.uint8)
    start = (-arena_raw.ctypes.data) % 64  # the bundle's MEMORY_ALIGNMENT (16) and then some
    arena = arena_raw[start:]
    outputs = [np.zeros(t.shape, dtype=t.dtype) for t in bundle.outputs]
    slots = bundle.debug_slots
    buffers = [np.zeros(model.tensor(s.tensor).shape, dtype=model.tensor(s.tensor).dtype) for s in slots]
    out_ptrs = (ctypes.c_void_p * max(1, len(outputs)))(*[o.ctypes.data for o in outputs])
    debug_ptrs = (ctypes.c_void_p * max(1, len(buffers)))(*[b.ctypes.data for b in buffers])

    input_tensors = [model.tensor(i) for i in model.inputs]
    inputs_seen: list[list[np.ndarray]] = [[] for _ in input_tensors]
    values: list[list[np.ndarray]] = [[] for _ in slots]
    for sample in samples:
        feed = []
        for k, (tensor, x) in enumerate(zip(input_tensors, sample)):
            scale, zero_point = per_tensor_quantization(tensor.quantization)
            feed.append(to_input(x, tensor.dtype, scale, zero_point).reshape(tensor.shape))
            inputs_seen[k].append(feed[-1])
        in_ptrs = (ctypes.c_void_p * max(1, len(feed)))(*[a.ctypes.data for a in feed])
        rc = run(in_ptrs, out_ptrs, arena.ctypes.data, debug_ptrs)
        if rc != 0:
            raise EdgekitError(f"the debug bundle returned {rc}")
        for k, buffer in enumerate(buffers):
            values[k].append(buffer.copy())

    tensors = []
    for k, tensor in enumerate(input_tensors):
        scale, zero_point = per_tensor_quantization(tensor.quantization)
        tensors.append(Captured(tensor.name, -1, "INPUT", stack(inputs_seen[k]), scale, zero_point, tensor.index))
    for slot, captured in zip(slots, values):
        scale, zero_point = per_tensor_quantization(model.tensor(slot.tensor).quantization)
        tensors.append(Captured(slot.name, slot.node, slot.opcode, stack(captured), scale, zero_point, slot.tensor))
    return Capture(
        runtime="aot",
        tensors=tensors,
        inputs=[t.name for t in input_tensors],
        outputs=[model.tensor(i).name for i in model.outputs],
    )


def capture_aot_artifact(artifact, samples: list[list[np.ndarray]]) -> Capture:
    """The debug build of an aot artifact, run on the host."""
    from edgekit.aot.compiler import compile_model

    info = artifact.info
    tflite = artifact.path / info["tflite"]
    features = set(info.get("features", ()))
    with tempfile.TemporaryDirectory(prefix="edgekit-debug-aot-") as tmp:
        build = write_debug_build(tflite, Path(tmp), name=info["c_name"], features=features)
        capture = run_debug_build(build, samples, info.get("host_cflags"))
    plain = compile_model(tflite, name=info["c_name"], features=features)
    if plain.source != artifact.primary_path.read_text():
        capture.notes.append(
            f"{artifact.primary} is not what this aot compiler generates from {info['tflite']} "
            "(edited, or built by another version): the operator outputs come from the regenerated code"
        )
    return capture
