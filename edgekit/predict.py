"""Run a .npy of inputs through a runner and save the raw outputs, for users who check a conversion."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from edgekit.core import Runner, shape_matches
from edgekit.bench.progress import progress
from edgekit.errors import EdgekitError
from edgekit.quantize_io import quantize_input


def load_inputs(path: Path, runner: Runner) -> np.ndarray:
    """The batch in `path`, in the dtype the runner takes (float inputs are quantized for int8 models)."""
    if len(runner.inputs) != 1:
        raise EdgekitError(f"the model has {len(runner.inputs)} inputs; predict takes models with one")
    spec = runner.inputs[0]
    try:
        x = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise EdgekitError(f"input file not found: {path}") from None
    except (OSError, ValueError) as exc:
        raise EdgekitError(f"{path} is not a .npy array ({exc})") from None
    if x.ndim == 0 or not shape_matches((1, *x.shape[1:]), (1, *spec.shape[1:])):
        raise EdgekitError(
            f"{path} holds shape {x.shape}; the model takes a batch of {tuple(spec.shape[1:])} "
            "(batch on the first axis)"
        )
    if x.dtype == np.dtype(spec.dtype):
        return x
    if x.dtype.kind == "f":
        return quantize_input(x.astype(np.float32), spec)
    raise EdgekitError(f"{path} holds {x.dtype}; the model takes {spec.dtype} (or float32 to be quantized)")


def predict_file(runner: Runner, input_path: Path, output_path: Path) -> int:
    x = load_inputs(Path(input_path), runner)
    spec = runner.inputs[0]
    rows = [runner.infer({spec.name: sample[None, ...]}) for sample in progress(x, label="predict")]
    outputs = {o.name: np.concatenate([r[o.name] for r in rows]) for o in runner.outputs}
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{output_path.name}.", suffix=".npy", dir=output_path.parent)
    os.close(fd)
    try:
        with open(tmp, "wb") as f:  # a file object: numpy adds no suffix of its own
            if len(outputs) == 1:
                np.save(f, next(iter(outputs.values())))
            else:
                np.savez(f, **outputs)
        os.replace(tmp, output_path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(x)
