"""Reference input/output pairs for a bundle's C test (tests/c/bundle_test.c, run by ctest).

int8 models are judged by the TFLM interpreter (bit-exact), float models by
LiteRT. `python -m edgekit.aot.testvectors MODEL.tflite FOLDER` compiles the
bundle into FOLDER and writes FOLDER/test_vectors.bin beside it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from edgekit._lazy import require

VECTORS = "test_vectors.bin"


def reference_outputs(model: bytes, inputs: list[np.ndarray], int8: bool) -> list[np.ndarray]:
    if int8:
        runtime = require("tflite_micro.python.tflite_micro.runtime", "tflm")
        interp = runtime.Interpreter.from_bytes(model)
        results = []
        for x in inputs:
            interp.set_input(x, 0)
            interp.invoke()
            results.append(np.array(interp.get_output(0), copy=True))
        return results
    litert = require("ai_edge_litert.interpreter", "tflite")
    interp = litert.Interpreter(model_content=model, num_threads=1)
    interp.allocate_tensors()
    in_index = interp.get_input_details()[0]["index"]
    out_index = interp.get_output_details()[0]["index"]
    results = []
    for x in inputs:
        interp.set_tensor(in_index, x)
        interp.invoke()
        results.append(interp.get_tensor(out_index).copy())
    return results


def write_test_vectors(model: bytes, bundle, folder: Path, count: int = 20, seed: int = 0) -> Path:
    """Write `count` random inputs with their reference outputs for `bundle` (single I/O)."""
    if len(bundle.inputs) != 1 or len(bundle.outputs) != 1:
        raise ValueError("the C test driver handles bundles with one input and one output")
    spec = bundle.inputs[0]
    int8 = spec.dtype == "int8" and bundle.outputs[0].dtype == "int8"
    rng = np.random.default_rng(seed)
    if spec.dtype == "float32":
        inputs = [rng.uniform(-1, 1, size=spec.shape).astype(np.float32) for _ in range(count)]
    else:
        info = np.iinfo(spec.dtype)
        inputs = [rng.integers(info.min, info.max + 1, size=spec.shape, dtype=spec.dtype) for _ in range(count)]
    outputs = reference_outputs(model, inputs, int8)
    path = Path(folder) / VECTORS
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        for x, y in zip(inputs, outputs):
            f.write(np.ascontiguousarray(x).tobytes())
            f.write(np.ascontiguousarray(y, dtype=bundle.outputs[0].dtype).tobytes())
    tmp.replace(path)
    return path


def main(argv: list[str] | None = None) -> int:
    from edgekit.aot.compiler import compile_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--name", default=None, help="C name of the bundle (default: file stem)")
    args = parser.parse_args(argv)
    bundle = compile_model(args.model, name=args.name)
    bundle.write(args.folder)
    path = write_test_vectors(args.model.read_bytes(), bundle, args.folder, args.count)
    print(f"wrote {args.folder / bundle.name}.c, .h and {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
