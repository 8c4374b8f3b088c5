"""TensorFlow.js: the official `tensorflowjs` converter writes a graph model; Node.js or a browser runs it.

    Keras (.keras/.h5) ──tf.function──▶ SavedModel ──tensorflowjs──▶ model.json + weight shards
    SavedModel ─────────────────────────────┘

Quantizations are TF.js weight quantizations: `none` (float32 weights),
`fp16` (float16 weights) and `dynamic` (uint8 weights, affine per tensor);
activations stay float32 in every case. The artifacts run out of process
only: under Node.js (`node` runner kind) or in a browser page (`browser`),
see edgekit/runners/node.py and edgekit/runners/browser.py.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

from edgekit._lazy import require, version_of
from edgekit._quiet import native_output_hidden
from edgekit.backends.base import Backend, ConversionResult
from edgekit.core import TensorSpec
from edgekit.errors import EdgekitError

MODEL_JSON = "model.json"
#: recipe quantization -> the converter's quantization_dtype_map
WEIGHT_QUANTIZATION = {"none": None, "fp16": {"float16": True}, "dynamic": {"uint8": True}}
#: TensorFlow dtypes in model.json -> what TF.js hands a runner (TF.js has no int64 or float16 tensors)
_DTYPES = {"DT_FLOAT": "float32", "DT_HALF": "float32", "DT_INT32": "int32", "DT_INT64": "int32", "DT_BOOL": "uint8"}


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def convert_to_tfjs(source, quantization: str, out_dir: Path) -> Path:
    """Write `source` as a TF.js graph model in `out_dir`; the path of its model.json."""
    from edgekit.sources import loader_for

    loader = loader_for(source)
    loader.check_saved_model()  # a .tflite or ONNX source is refused before anything else is looked at
    if quantization not in WEIGHT_QUANTIZATION:
        raise EdgekitError(
            f"TF.js has no {quantization} quantization: choose {', '.join(WEIGHT_QUANTIZATION)} "
            "(weights only; activations stay float32)"
        )
    from edgekit.sources.tensorflow import load_tensorflow

    with tempfile.TemporaryDirectory(prefix="edgekit-tfjs-") as tmp:
        saved = loader.saved_model(Path(tmp))
        load_tensorflow("tfjs")  # TensorFlow first, with its log level set, so importing the converter prints nothing
        # tensorflowjs imports TF Decision Forests, whose greeting imports IPython when output is captured
        os.environ.setdefault("TFDF_DISABLE_WELCOME_MESSAGE", "1")
        with native_output_hidden():
            converter = require("tensorflowjs.converters.tf_saved_model_conversion_v2", "tfjs")
        try:
            with native_output_hidden():
                converter.convert_tf_saved_model(
                    str(saved), str(out_dir), quantization_dtype_map=WEIGHT_QUANTIZATION[quantization]
                )
        except ValueError as exc:
            unsupported = re.search(r"Unsupported Ops in the model.*?\n(.*)", str(exc), re.S)
            if unsupported:
                ops = ", ".join(sorted(set(re.findall(r"[A-Za-z0-9_]+", unsupported.group(1)))))
                raise EdgekitError(
                    f"{source.ref}: TF.js has no kernel for op(s) {ops}: convert this model with another "
                    "backend (tflite, onnx), or replace those layers"
                ) from None
            raise EdgekitError(f"the tensorflowjs converter failed on {source.ref}: {_first_line(exc)}") from None
        except EdgekitError:
            raise
        except Exception as exc:  # the converter and TensorFlow raise many types for bad graphs
            raise EdgekitError(f"the tensorflowjs converter failed on {source.ref}: {_first_line(exc)}") from None
    model_json = Path(out_dir) / MODEL_JSON
    if not model_json.is_file():
        raise EdgekitError(f"the tensorflowjs converter wrote no {MODEL_JSON} for {source.ref}")
    return model_json


def _specs(entries: dict) -> list[TensorSpec]:
    """Tensor specs from one side of model.json's signature, sorted by name."""
    specs = []
    for key in sorted(entries):
        entry = entries[key]
        dims = entry.get("tensorShape", {}).get("dim", [])
        specs.append(
            TensorSpec(name=key, shape=tuple(int(d.get("size", -1)) for d in dims), dtype=_DTYPES.get(entry.get("dtype"), "float32"))
        )
    return specs


def describe(model_json: Path) -> tuple[list[TensorSpec], list[TensorSpec], dict]:
    """The graph model's inputs, outputs and facts for the manifest, read from model.json."""
    data = json.loads(Path(model_json).read_text())
    signature = data.get("signature", {})
    nodes = data.get("modelTopology", {}).get("node", [])
    folder = Path(model_json).parent
    shards = [p for group in data.get("weightsManifest", []) for p in group.get("paths", [])]
    weights = [w for group in data.get("weightsManifest", []) for w in group.get("weights", [])]
    info = {
        "format": "tfjs-graph-model",
        "ops": sorted({n["op"] for n in nodes if n.get("op") not in ("Const", "Placeholder")}),
        "weight_bytes": sum((folder / p).stat().st_size for p in shards),
        "weight_shards": len(shards),
        "weight_dtypes": sorted({(w.get("quantization") or {}).get("dtype", w.get("dtype", "float32")) for w in weights}),
    }
    return _specs(signature.get("inputs", {})), _specs(signature.get("outputs", {})), info


class TfjsBackend(Backend):
    name = "tfjs"
    quantizations = ("none", "fp16", "dynamic")
    extra = "tfjs"
    runs_on = ("node", "browser")

    def toolchain(self):
        return {
            "tensorflowjs": version_of("tensorflowjs") or "absent",
            "tensorflow": version_of("tensorflow") or "absent",
        }

    def convert(self, source, recipe, target, calibration, out_dir):
        model_json = convert_to_tfjs(source, recipe.quantization, Path(out_dir))
        inputs, outputs, info = describe(model_json)
        info["weight_quantization"] = recipe.quantization
        return ConversionResult(primary=MODEL_JSON, inputs=inputs, outputs=outputs, info=info)

    def load(self, artifact, target, options):
        raise EdgekitError(
            "a TF.js graph model runs under Node.js or in a browser, not in this process: "
            "use --target node-wasm, node-cpu, browser-wasm or browser-webgl"
        )
