"""TensorRT: the portable model plus an engine recipe; the engine is built on the device that runs it.

A TensorRT engine is tied to the GPU and the TensorRT version that built it,
so conversion ships what every device can build from:

    model.onnx         the model (tf2onnx for TensorFlow sources; an .onnx as given)
    engine.json        the recipe: precision (fp32|fp16|int8), workspace, input shapes, tensors
    calibration.npy    int8 only: the calibration samples the device's entropy calibrator reads

On the device, edgekit's device program parses, builds (int8 through
IInt8EntropyCalibrator2 fed from calibration.npy) and caches the engine
keyed by TensorRT version, GPU name and the recipe's hash, then runs it with
pycuda (see edgekit/link/device.py, class TensorRT). Its artifacts run only
where a GPU is: the `ssh` runner kind.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from edgekit._lazy import version_of
from edgekit.backends.base import Backend, ConversionResult
from edgekit.backends.onnx import OPSET, OnnxRuntimeRunner, export_onnx
from edgekit.core import Artifact, RunOptions, Runner
from edgekit.errors import EdgekitError
from edgekit.sources import loader_for

RECIPE_FILE = "engine.json"
RECIPE_SCHEMA = "edgekit.tensorrt-recipe/1"
CALIBRATION_FILE = "calibration.npy"
CALIBRATION_SAMPLES = 200
#: edgekit quantization -> TensorRT builder precision
PRECISIONS = {"none": "fp32", "fp16": "fp16", "int8": "int8"}
DEFAULT_WORKSPACE_BYTES = 1 << 30


def engine_recipe(onnx_path: Path, precision: str, workspace_bytes: int, inputs, outputs,
                  calibration: str | None = None, calibration_sha256: str | None = None) -> dict:
    """Everything the device needs to build the engine, and nothing about where it is built."""
    return {
        "schema": RECIPE_SCHEMA,
        "onnx": onnx_path.name,
        "onnx_sha256": hashlib.sha256(onnx_path.read_bytes()).hexdigest(),
        "precision": precision,
        "workspace_bytes": int(workspace_bytes),
        # batch 1 (as every edgekit runner), so the engine is built for the one shape it runs
        "input_shapes": {spec.name: [1 if d == -1 else int(d) for d in spec.shape] for spec in inputs},
        "inputs": [spec.to_json() for spec in inputs],
        "outputs": [spec.to_json() for spec in outputs],
        "calibration": calibration,
        "calibration_sha256": calibration_sha256,
    }


class TensorrtBackend(Backend):
    name = "tensorrt"
    quantizations = ("none", "fp16", "int8")
    extra = "tensorrt"
    runs_on = ("ssh",)

    def toolchain(self):
        # TensorRT itself is the device's: its version keys the device's engine cache instead
        return {
            "tf2onnx": version_of("tf2onnx") or "absent",
            "onnx": version_of("onnx") or "absent",
            "opset": str(OPSET),
            "recipe": RECIPE_SCHEMA,
        }

    def recipe_options(self, target):
        settings = (target.extras or {}).get("tensorrt") or {}
        return {"workspace_bytes": int(settings.get("workspace_bytes", DEFAULT_WORKSPACE_BYTES))}

    def convert(self, source, recipe, target, calibration, out_dir):
        out_dir = Path(out_dir)
        loader = loader_for(source)
        if loader.fixed_quantization() == "int8":
            raise EdgekitError(
                f"{source.path} is already int8: TensorRT calibrates int8 itself from the float model, "
                "so give the source model (.keras, .h5, SavedModel or .onnx) with --calibration"
            )
        onnx_path = export_onnx(loader, out_dir / "model.onnx")
        with OnnxRuntimeRunner(onnx_path) as described:
            inputs, outputs = described.inputs, described.outputs
        precision = PRECISIONS[recipe.quantization]
        calibration_file = calibration_sha = None
        if precision == "int8":
            calibration_file, calibration_sha = self._calibration(source, inputs, calibration, out_dir)
        built = engine_recipe(
            onnx_path, precision, recipe.target_options.get("workspace_bytes", DEFAULT_WORKSPACE_BYTES),
            inputs, outputs, calibration_file, calibration_sha,
        )
        (out_dir / RECIPE_FILE).write_text(json.dumps(built, indent=2, sort_keys=True) + "\n")
        return ConversionResult(
            primary=onnx_path.name, inputs=inputs, outputs=outputs,
            info={"engine_recipe": RECIPE_FILE, "precision": precision, "engine": "built on the device"},
        )

    @staticmethod
    def _calibration(source, inputs, calibration, out_dir: Path) -> tuple[str, str]:
        from edgekit.datasets import fit_to_shape

        if calibration is None:
            raise EdgekitError(
                f"int8 for TensorRT needs calibration data for {source.ref}: pass --calibration "
                "(digits, mnist5k or FILE.npz), or register the model with a data set"
            )
        if len(inputs) != 1:
            raise EdgekitError(f"int8 calibration feeds one input; {source.ref} has {len(inputs)}")
        shape = tuple(1 if d == -1 else d for d in inputs[0].shape[1:])
        samples = np.asarray(calibration, dtype=np.float32)[:CALIBRATION_SAMPLES]
        samples = np.ascontiguousarray(fit_to_shape(samples, shape, "the calibration data"), dtype=np.float32)
        path = out_dir / CALIBRATION_FILE
        np.save(path, samples)
        return path.name, hashlib.sha256(path.read_bytes()).hexdigest()

    def load(self, artifact: Artifact, target, options: RunOptions) -> Runner:
        raise EdgekitError(
            "a TensorRT artifact runs on the device that builds its engine: bench it with a jetson "
            "target and --host (or --backend onnx to run the model here)"
        )
