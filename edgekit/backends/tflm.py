"""TensorFlow Lite Micro: an int8 model, its C arrays, its exact op resolver, its measured arena.

`convert` quantizes to full int8 (through the tflite backend's converter),
validates the result, checks that every operator computes in integers and
has a TFLM kernel, measures the tensor arena with the TFLM interpreter, and
writes what a firmware needs:

  model.tflite        the int8 flatbuffer (the primary file)
  model_data.cc/.h    the flatbuffer as `alignas(16) const unsigned char g_<name>_model_data[]`
  model_ops.h         a `MicroMutableOpResolver<N>` filler with exactly the model's N operators
  model_settings.h    `kTensorArenaSize` (measured + alignment margin), array name, I/O sizes
  ek_model_tflm.cc    edgekit's model interface (common/ek_model.h) over TFLM, for the templates

plus a fit report (flash and RAM against the target's budgets) in
`info["fit"]`; a model that does not fit is refused with the numbers.
`load` runs the model in TFLM's interpreter on this host; boards and the
emulator are reached through placement (edgekit/placement.py).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgekit._lazy import version_of
from edgekit.backends.base import Backend, ConversionResult
from edgekit.core import Artifact, RunOptions, Runner
from edgekit.errors import EdgekitError
from edgekit.tflm import carrays, resolver
from edgekit.tflm.fit import fit_report
from edgekit.tflm.glue import GLUE_FILE, GLUE_SOURCE, GLUE_VERSION
from edgekit.tflm.ops import TYPE_BOUNDARY_OPS

if TYPE_CHECKING:
    from edgekit.models import SourceModel
    from edgekit.recipes import Recipe
    from edgekit.targets import Target

PRIMARY = "model.tflite"
_FLOAT_DTYPES = {"float32", "float16", "float64"}


class FloatOpError(EdgekitError):
    """An operator of the model computes in floating point: no int8 kernel to run it on an MCU."""


def check_integer_only(model, path: Path) -> None:
    """Raise unless the model's inputs, outputs and every computing operator are integer."""
    for role, indices in (("input", model.inputs), ("output", model.outputs)):
        for index in indices:
            tensor = model.tensor(index)
            if tensor.dtype in _FLOAT_DTYPES:
                raise FloatOpError(
                    f"{path.name}: model {role} '{tensor.name}' is {tensor.dtype}; TFLM targets take "
                    "int8 input and output: convert the source model with int8 quantization"
                )
    float_ops = []
    for op in model.operators:
        if op.opcode in TYPE_BOUNDARY_OPS:
            continue
        touched = [i for i in (*op.inputs, *op.outputs) if i >= 0]
        if any(model.tensor(i).dtype in _FLOAT_DTYPES for i in touched):
            float_ops.append(f"operator {op.index} ({op.opcode})")
    if float_ops:
        raise FloatOpError(
            f"{path.name}: {', '.join(float_ops)} computes in floating point and has no int8 kernel: "
            "replace it with an operator that quantizes, or use a float backend (--backend tflite)"
        )


def _tensor_bytes(spec) -> int:
    return int(np.prod(spec.shape, dtype=np.int64)) * np.dtype(spec.dtype).itemsize


def _calibration_facts(calibration: np.ndarray) -> dict[str, Any]:
    data = np.ascontiguousarray(calibration)
    return {
        "samples": int(data.shape[0]) if data.ndim else 1,
        "shape": list(data.shape),
        "sha256": hashlib.sha256(data.tobytes()).hexdigest(),
    }


def render_settings(name: str, arena, input_bytes: int, output_bytes: int) -> str:
    """`model_settings.h`: the measured arena and the names a firmware needs."""
    array = carrays.array_name(name)
    return "\n".join(
        [
            "#ifndef EDGEKIT_MODEL_SETTINGS_H_",
            "#define EDGEKIT_MODEL_SETTINGS_H_",
            "",
            f"// Tensor arena: {arena.measured_bytes} bytes measured with the TFLM interpreter",
            f"// (smallest arena that allocates and invokes), + {arena.margin_bytes} bytes for",
            "// alignment (TFLM aligns the arena start to 16 bytes).",
            f"constexpr int kTensorArenaSize = {arena.arena_bytes};",
            "",
            f"#define EK_TFLM_MODEL_DATA {array}",
            f'#define EK_TFLM_MODEL_NAME "{carrays.c_identifier(name)}"',
            f"constexpr unsigned int kModelInputBytes = {input_bytes};",
            f"constexpr unsigned int kModelOutputBytes = {output_bytes};",
            "",
            "#endif  // EDGEKIT_MODEL_SETTINGS_H_",
            "",
        ]
    )


def _memory_facts(info: dict[str, Any], target: Target) -> dict[str, Any]:
    """Runner.memory(): the artifact's measured arena and op list, fitted to the bench target."""
    report = fit_report(
        target,
        model_bytes=info["model_bytes"],
        kernel_count=len(info["ops"]),
        arena_bytes=info["arena_bytes"],
        io_bytes=info["io_bytes"],
    )
    return {
        "arena_bytes": info["arena_bytes"],
        "arena_measured_bytes": info["arena_measured_bytes"],
        # TFLM's own split, as its benchmarks report it
        "arena_persistent_bytes": info.get("arena_persistent_bytes"),
        "arena_nonpersistent_bytes": info.get("arena_nonpersistent_bytes"),
        "flash_bytes": report.flash_bytes,
        "ram_bytes": report.ram_bytes,
        "flash_budget_bytes": report.flash_budget,
        "ram_budget_bytes": report.ram_budget,
        "fits": report.fits,
        "ops": list(info["ops"]),
    }


class TflmBackend(Backend):
    name = "tflm"
    quantizations = ("int8",)
    extra = "tflm"
    runs_on = ("host", "qemu", "serial")
    runtime_modules = ("tflite_micro.python.tflite_micro.runtime",)

    def toolchain(self) -> dict[str, str]:
        return {
            "tensorflow": version_of("tensorflow") or "absent",
            "tflite-micro": version_of("tflite-micro") or "absent",
            "ek_model_tflm": GLUE_VERSION,
        }

    def recipe_options(self, target: Target) -> dict[str, Any]:
        # the fit report is part of the artifact, and it is made for one board
        return {"fit_target": target.name}

    def convert(
        self,
        source: SourceModel,
        recipe: Recipe,
        target: Target,
        calibration: np.ndarray | None,
        out_dir: Path,
    ) -> ConversionResult:
        from edgekit.tflm.arena import measure_arena
        from edgekit.tflm.interpreter import interface, validate_model

        out_dir = Path(out_dir)
        model_path = out_dir / PRIMARY
        from edgekit.backends.tflite import convert_to_tflite

        # a .tflite source is copied as it is and validated here, before any interpreter reads it
        convert_to_tflite(source, recipe.quantization, calibration, model_path)
        # a user's .tflite is named as they named it; a converted one is ours
        model = validate_model(model_path, Path(source.path).name if source.format == "tflite" else None)
        check_integer_only(model, model_path)
        ops = model.ops_used()
        resolver_header = resolver.render_ops_header(ops)  # unsupported ops fail here, named
        arena = measure_arena(model_path)

        inputs, outputs = interface(model)
        input_bytes = sum(_tensor_bytes(s) for s in inputs)
        output_bytes = sum(_tensor_bytes(s) for s in outputs)
        flatbuffer = model_path.read_bytes()
        report = fit_report(
            target,
            model_bytes=len(flatbuffer),
            kernel_count=len(ops),
            arena_bytes=arena.arena_bytes,
            io_bytes=input_bytes + output_bytes,
        )
        report.check()

        carrays.write_model_arrays(flatbuffer, source.name, out_dir)
        (out_dir / "model_ops.h").write_text(resolver_header)
        (out_dir / "model_settings.h").write_text(
            render_settings(source.name, arena, input_bytes, output_bytes)
        )
        (out_dir / GLUE_FILE).write_text(GLUE_SOURCE)
        counts = Counter(op.opcode for op in model.operators)
        info: dict[str, Any] = {
            "model_bytes": len(flatbuffer),
            "ops": ops,
            "op_counts": {op: counts[op] for op in ops},
            "arena_bytes": arena.arena_bytes,
            "arena_measured_bytes": arena.measured_bytes,
            "arena_margin_bytes": arena.margin_bytes,
            "arena_persistent_bytes": arena.persistent_bytes,
            "arena_nonpersistent_bytes": arena.nonpersistent_bytes,
            "arena_basis": "smallest arena with which the host TFLM interpreter (64-bit, reference "
            "kernels) allocates and invokes, found by bisection; + margin for 16-byte alignment",
            "io_bytes": input_bytes + output_bytes,
            "array_name": carrays.array_name(source.name),
            "c_name": carrays.c_identifier(source.name),
            # template variables for firmware_templates/tflm-*
            "firmware": {"arena_bytes": arena.arena_bytes, "model_array": carrays.array_name(source.name)},
            "fit": report.to_json(),
            "summary": [
                f"int8 model {len(flatbuffer):,} B, {len(ops)} op{'s' if len(ops) != 1 else ''}: {', '.join(ops)}",
                f"arena {arena.arena_bytes:,} B (measured {arena.measured_bytes:,} B "
                f"+ {arena.margin_bytes} B alignment margin)",
                *report.verdicts(),
            ],
        }
        if calibration is not None:
            info["calibration_samples"] = _calibration_facts(calibration)
        else:
            info["calibration"] = "none: the model was already int8 and is used as it is"
        return ConversionResult(primary=PRIMARY, inputs=inputs, outputs=outputs, info=info)

    def load(self, artifact: Artifact, target: Target, options: RunOptions) -> Runner:
        from edgekit.tflm.interpreter import TflmHostRunner

        return TflmHostRunner(
            artifact.primary_path,
            arena_bytes=artifact.info["arena_bytes"],
            memory=_memory_facts(artifact.info, target),
        )
