"""The aot backend: a .tflite model compiled ahead of time into a plain C99 bundle.

`convert` gets a .tflite (int8 or float32) through the tflite backend's
converter and compiles it with `edgekit.aot` into `<name>.h`/`<name>.c`
beside the .tflite it came from. `load` builds the bundle with the host C
compiler and calls it through ctypes (runner `aot-host`); boards and the
emulator are reached through placement (edgekit/placement.py). For int8 artifacts the fidelity reference is
TFLM's interpreter on the same .tflite, which the bundle matches bit for bit.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from edgekit._lazy import version_of
from edgekit.backends.base import Backend, ConversionResult
from edgekit.core import Artifact, RunOptions, Runner, TensorSpec
from edgekit.errors import EdgekitError

if TYPE_CHECKING:
    from edgekit.models import SourceModel
    from edgekit.recipes import Recipe
    from edgekit.targets import Target

#: target features that change the generated code
CODE_FEATURES = ("dsp", "mve")
#: edgekit.aot.compiler.OPTIMIZE_DEFAULT, here so recipes need not import the compiler
OPTIMIZE_DEFAULT = "balanced"
REFERENCE_ARENA_BYTES = 4 * 1024 * 1024


@cache
def compiler_fingerprint() -> str:
    """Hash of the aot compiler's own sources: a changed compiler invalidates cached bundles."""
    package = Path(__file__).resolve().parents[1]
    root = package / "aot"
    # the .tflite reader decides which models reach the compiler and what it sees of them
    sources = [*root.glob("*.py"), *root.glob("ops/*.py"), *root.glob("kernels/*.h"),
               *(package / "tflite").glob("*.py")]
    digest = hashlib.sha256()
    for path in sorted(sources):
        digest.update(path.relative_to(package).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def tensor_spec(info) -> TensorSpec:
    """A compiler TensorInfo as a TensorSpec (per-tensor quantization only)."""
    per_tensor = info.quantized and len(info.scale) == 1
    return TensorSpec(
        name=info.name,
        shape=tuple(int(d) for d in info.shape),
        dtype=info.dtype,
        scale=float(info.scale[0]) if per_tensor else None,
        zero_point=int(info.zero_point[0]) if per_tensor else None,
    )


def tflm_arena_facts(tflite_path: Path) -> dict[str, Any]:
    """TFLM's measured arena for the same model, to report beside the bundle's (int8 only).

    Empty when TFLM is not installed: the bundle does not need it.
    """
    try:
        from edgekit.tflm.arena import measure_arena

        arena = measure_arena(tflite_path)
    except (ImportError, EdgekitError):
        return {}
    return {
        "tflm_arena_bytes": arena.measured_bytes,
        "tflm_arena_nonpersistent_bytes": arena.nonpersistent_bytes,
    }


class AotBackend(Backend):
    name = "aot"
    quantizations = ("int8", "none")
    extra = "aot"
    runs_on = ("host", "qemu", "serial")
    optimize_modes = ("speed", "balanced", "size")

    def toolchain(self) -> dict[str, str]:
        return {
            "tensorflow": version_of("tensorflow") or "absent",
            "edgekit-aot": compiler_fingerprint(),
        }

    def recipe_options(self, target: Target) -> dict[str, Any]:
        options = {
            "cpu": target.cpu,
            "arch": target.arch,
            "features": sorted(f for f in target.features if f in CODE_FEATURES),
            "optimize": OPTIMIZE_DEFAULT,  # the pipeline puts --optimize here: cached separately
        }
        if target.memory_map:  # a board: the fit report is part of the artifact, made for that board
            options["fit_target"] = target.name
        return options

    def convert(
        self,
        source: SourceModel,
        recipe: Recipe,
        target: Target,
        calibration: np.ndarray | None,
        out_dir: Path,
    ) -> ConversionResult:
        from edgekit.aot.codegen import c_identifier
        from edgekit.aot.compiler import compile_model, optimize_summary
        from edgekit.aot.fit import model_weight_bytes
        from edgekit.aot.hostbuild import HOST_CFLAGS
        from edgekit.backends.tflite import convert_to_tflite

        out_dir = Path(out_dir)
        name = c_identifier(source.name)
        tflite_path = convert_to_tflite(source, recipe.quantization, calibration, out_dir / f"{name}.tflite")
        features = set(recipe.target_options.get("features", ())) or {
            f for f in target.features if f in CODE_FEATURES
        }
        optimize = recipe.target_options.get("optimize", OPTIMIZE_DEFAULT)
        bundle = compile_model(tflite_path, name=name, features=features, optimize=optimize)
        bundle.write(out_dir)
        int8 = all(t.dtype == "int8" for t in (*bundle.inputs, *bundle.outputs))
        model_weights = model_weight_bytes(tflite_path)
        plan = bundle.plan
        peak = bundle.ops[plan.peak_node] if plan.peak_node >= 0 else None
        info = {
            "arena_bytes": bundle.arena_bytes,
            # no placement of the same tensors fits in less: the most bytes live at one operator
            "arena_lower_bound_bytes": plan.lower_bound,
            "arena_peak_operator": f"{plan.peak_node} {peak}" if peak else None,
            "weights_bytes": bundle.weights_bytes,
            "model_weights_bytes": model_weights,
            "ops": bundle.ops,
            "c_name": bundle.name,
            "header": f"{bundle.name}.h",
            "tflite": tflite_path.name,
            "cpu": target.cpu,
            "features": sorted(features),
            "dsp": "dsp" in features,
            "mve": "mve" in features,
            "int8": int8,
            "optimize": optimize,
            "rounding": "single" if bundle.single_rounding else "double (gemmlowp), as the TFLM build",
            "host_cflags": list(HOST_CFLAGS),
            "summary": [
                f"{len(bundle.ops)} operators compiled to C: {', '.join(sorted(set(bundle.ops)))}",
                f"activation arena {bundle.arena_bytes:,} B, weights {bundle.weights_bytes:,} B",
                # the flash goal's measure: the bundle against the model's own weights (the code is
                # added when a firmware is built: `edgekit build`)
                f"constants {bundle.weights_bytes / max(model_weights, 1):.3f}x the model's "
                f"{model_weights:,} B of weights, before code",
                f"arena lower bound {plan.lower_bound:,} B"
                + (f" (the tensors live at operator {plan.peak_node}, {peak})" if peak else ""),
                f"--optimize {optimize}: {optimize_summary(optimize, features)}",
            ],
        }
        if target.memory_map:
            # a board decides from the planned arena, before any firmware is built
            from edgekit.aot.fit import fit_report
            from edgekit.firmware import tensor_bytes

            io_bytes = tensor_bytes([tensor_spec(t) for t in (*bundle.inputs, *bundle.outputs)])
            report = fit_report(target, info, io_bytes)
            report.check()
            info["fit"] = report.to_json()
            info["summary"].extend(report.verdicts())
        if int8:
            info |= tflm_arena_facts(tflite_path)
            if "tflm_arena_bytes" in info:
                info["summary"].append(
                    f"TFLM on the same model: arena {info['tflm_arena_bytes']:,} B "
                    f"({info['tflm_arena_nonpersistent_bytes']:,} B of it tensors)"
                )
        return ConversionResult(
            primary=f"{bundle.name}.c",
            inputs=[tensor_spec(t) for t in bundle.inputs],
            outputs=[tensor_spec(t) for t in bundle.outputs],
            info=info,
        )

    def load(self, artifact: Artifact, target: Target, options: RunOptions) -> Runner:
        return AotHostRunner(artifact)

    def reference(self, source: SourceModel, artifact: Artifact) -> Runner | None:
        """int8: TFLM's interpreter on the same .tflite (bit-exact); float: the source model."""
        if not artifact.info.get("int8"):
            return None
        from edgekit.tflm.interpreter import TflmHostRunner

        # a generous arena: this runner only judges outputs, its memory is not reported
        return TflmHostRunner(artifact.path / artifact.info["tflite"], arena_bytes=REFERENCE_ARENA_BYTES)


class AotHostRunner(Runner):
    """The bundle compiled by the host C compiler, called through ctypes.

    `_infer`, the harness's timed path, copies nothing: the feed's arrays are
    read where they lie and the outputs are the bundle's own arrays, which the
    next inference rewrites. `infer` returns copies, the caller's to keep.
    """

    name = "aot-host"

    def __init__(self, artifact: Artifact):
        from edgekit.aot.hostbuild import HOST_CFLAGS, HostBundle, build_shared_library

        self.inputs = list(artifact.inputs)
        self.outputs = list(artifact.outputs)
        info = artifact.info
        cflags = tuple(info.get("host_cflags", HOST_CFLAGS))
        library = build_shared_library(artifact.primary_path, cflags)
        self.bundle = HostBundle(
            library,
            info["c_name"],
            [(s.shape, s.dtype) for s in self.inputs],
            [(s.shape, s.dtype) for s in self.outputs],
            int(info["arena_bytes"]),
        )
        self._input_names = [s.name for s in self.inputs]
        # views made once of the arrays the bundle writes its outputs into
        self._results = {s.name: o.reshape(s.shape) for s, o in zip(self.outputs, self.bundle.outputs)}
        self._memory = {
            "arena_bytes": int(info["arena_bytes"]),
            "weights_bytes": int(info["weights_bytes"]),
        }

    def infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.check_feed(feed)
        return {name: value.copy() for name, value in self._infer(feed).items()}

    def _infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.bundle.call(*[feed[name] for name in self._input_names])
        return dict(self._results)

    def memory(self) -> dict[str, Any]:
        return dict(self._memory)
