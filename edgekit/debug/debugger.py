"""`edgekit debug`: run the reference and the converted model on the same inputs, layer by layer.

    model ──artifact_for──▶ artifact ──capture (its backend's runtime)──┐
      └──── source model ──capture (float reference)───────────────────┴─▶ match ─▶ rows ─▶ DebugResult

The reference is the source model in float (a Keras sub-model of every
layer's output), LiteRT for a .tflite source, onnxruntime for an .onnx one,
and LiteRT on a float conversion for a SavedModel. An int8 aot bundle is also
held against TFLM's interpreter integer for integer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgekit.debug.capture import Capture, Captured
from edgekit.debug.causes import BitExactness, RangeCheck, bit_exactness, range_check
from edgekit.debug.match import Pair, match
from edgekit.debug.metrics import Errors, Tolerance, errors, fails, growth
from edgekit.errors import EdgekitError

#: backends whose intermediate tensors edgekit can read
SUPPORTED_BACKENDS = ("tflite", "tflm", "aot", "onnx")
#: backends that will be supported, with what to do meanwhile
NOT_YET = {
    "tfjs": "edgekit debug does not support the tfjs backend yet: debug the same model with "
    "--backend tflite (the converter tfjs starts from) meanwhile",
}
DEFAULT_INPUTS = 32
RANDOM_SEED = 0


@dataclass
class Row:
    """One matched layer: its errors, their growth, and the int8 range check where there is one."""

    depth: int
    pair: Pair
    errors: Errors
    growth: float | None
    range: RangeCheck | None
    failed: bool

    @property
    def layer(self) -> str:
        return self.pair.reference.name

    def to_json(self) -> dict[str, Any]:
        ref, conv = self.pair.reference, self.pair.converted
        return {
            "depth": self.depth,
            "layer": self.layer,
            "tensor": conv.name,
            "op": conv.op,
            "position": conv.position,
            "matched_by": self.pair.how,
            "max_abs_err": self.errors.max_abs,
            "cosine": self.errors.cosine,
            "rel_l2": self.errors.rel_l2,
            "growth": self.growth,
            "outside_tolerance": self.errors.outside_tolerance,
            "reference_quantization": _quantization_json(ref),
            "converted_quantization": _quantization_json(conv),
            "range": None if self.range is None else {
                "calibrated": list(self.range.calibrated),
                "observed": list(self.range.observed),
                "clipped_share": self.range.clipped_share,
                "clipped": self.range.clipped,
            },
            "failed": self.failed,
        }


def _quantization_json(t: Captured) -> dict[str, Any]:
    return {"dtype": t.dtype, "scale": t.scale, "zero_point": t.zero_point}


@dataclass
class DebugResult:
    model: str
    target: str
    backend: str
    quantization: str
    reference: str  # the reference runtime
    converted: str  # the converted model's runtime
    samples: int
    inputs_from: str
    tolerance: Tolerance
    rows: list[Row]
    unmatched: list[Captured]
    bit_exact: BitExactness | None = None
    stopped_early: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def first_failure(self) -> Row | None:
        return next((r for r in self.rows if r.failed), None)

    @property
    def ok(self) -> bool:
        return self.first_failure is None and (self.bit_exact is None or self.bit_exact.exact)

    def to_json(self) -> dict[str, Any]:
        first = self.first_failure
        return {
            "model": self.model,
            "target": self.target,
            "backend": self.backend,
            "quantization": self.quantization,
            "reference": self.reference,
            "runtime": self.converted,
            "samples": self.samples,
            "inputs_from": self.inputs_from,
            "tolerance": self.tolerance.describe(),
            "ok": self.ok,
            "first_failing_layer": None if first is None else first.layer,
            "stopped_early": self.stopped_early,
            "layers": [r.to_json() for r in self.rows],
            "unmatched": [t.name for t in self.unmatched],
            "bit_exact": None if self.bit_exact is None else {
                "exact": self.bit_exact.exact,
                "compared": self.bit_exact.compared,
                "first_op": None if self.bit_exact.exact else self.bit_exact.first.position,
                "first_opcode": None if self.bit_exact.exact else self.bit_exact.first.op,
                "summary": self.bit_exact.describe(),
            },
            "notes": self.notes,
        }


def check_backend(name: str | None) -> None:
    if name is None:
        return
    if name in NOT_YET:
        raise EdgekitError(NOT_YET[name])
    if name not in SUPPORTED_BACKENDS:
        raise EdgekitError(
            f"edgekit debug cannot read the intermediate tensors of backend {name}: "
            f"choose one of {', '.join(SUPPORTED_BACKENDS)}"
        )


def debug(
    model: str,
    target: str,
    backend: str | None = None,
    quantization: str | None = None,
    calibration: str | None = None,
    dataset: str | None = None,
    inputs: int = DEFAULT_INPUTS,
    tolerance: Tolerance = Tolerance(),
    fail_fast: bool = False,
    registry_uri: str | None = None,
    optimize: str | None = None,
) -> DebugResult:
    from edgekit.pipeline import artifact_for

    check_backend(backend)
    artifact, source = artifact_for(model, target, backend, quantization, calibration, registry_uri, optimize=optimize)
    check_backend(artifact.backend)
    if source is None:
        raise EdgekitError(
            f"the source model of {model} is not where it was converted from: "
            "debug the model itself (a file or name[:version]), which is the reference"
        )
    samples, inputs_from = input_samples(artifact, source, dataset or source.dataset or calibration, inputs)
    reference, reference_label = capture_reference(source, samples, registry_uri)
    converted = capture_converted(artifact, samples)
    rows, unmatched, stopped = measure(reference, converted, tolerance, fail_fast)
    result = DebugResult(
        model=model,
        target=target,
        backend=artifact.backend,
        quantization=artifact.recipe.get("quantization", "?"),
        reference=reference_label,
        converted=converted.runtime,
        samples=len(samples),
        inputs_from=inputs_from,
        tolerance=tolerance,
        rows=rows,
        unmatched=unmatched,
        stopped_early=stopped,
        notes=reference.notes + converted.notes,
    )
    if artifact.backend == "aot" and artifact.info.get("int8"):
        from edgekit.debug.capture_tflm import capture_tflm

        result.bit_exact = bit_exactness(converted, capture_tflm(artifact.path / artifact.info["tflite"], samples))
    return result


def measure(
    reference: Capture, converted: Capture, tolerance: Tolerance, fail_fast: bool = False
) -> tuple[list[Row], list[Captured], bool]:
    """Match two captures and measure every pair in the converted model's order.

    Returns the rows, the converted tensors without a reference, and whether
    `fail_fast` stopped before the last pair.
    """
    matching = match(reference, converted)
    rows: list[Row] = []
    previous = None
    stopped = False
    for depth, pair in enumerate(matching.pairs):
        ref_real, conv_real = pair.reference.real(), pair.converted_real()
        e = errors(ref_real, conv_real, tolerance)
        row = Row(depth, pair, e, growth(previous, e.rel_l2), range_check(ref_real, pair.converted), fails(e, tolerance))
        rows.append(row)
        previous = e.rel_l2
        if row.failed and fail_fast:
            stopped = depth < len(matching.pairs) - 1
            break
    return rows, matching.unmatched, stopped


def input_samples(artifact, source, dataset: str | None, count: int) -> tuple[list[list[np.ndarray]], str]:
    """`count` float samples (one batch-1 array per model input), and where they came from."""
    from edgekit import datasets

    shapes = [tuple(int(d) for d in spec.shape[1:]) for spec in artifact.inputs]
    if dataset is not None and len(shapes) == 1:
        data = datasets.load(dataset)
        x = datasets.fit_to_shape(np.asarray(data.x_test[:count], dtype=np.float32), shapes[0], f"data set {dataset}")
        return [[sample[None]] for sample in x], f"{len(x)} samples of {data.name}'s test split"
    rng = np.random.default_rng(RANDOM_SEED)
    samples = [[rng.uniform(-1.0, 1.0, size=(1, *shape)).astype(np.float32) for shape in shapes] for _ in range(count)]
    why = "no data set given" if dataset is None else "data sets feed single-input models only"
    return samples, f"{count} seeded random samples in [-1, 1) ({why}: pass --dataset)"


def capture_reference(source, samples, registry_uri: str | None) -> tuple[Capture, str]:
    """The float reference's capture and its label."""
    if source.format == "keras":
        from edgekit.debug.capture_keras import capture_keras

        return capture_keras(source.path, samples), "Keras (float, every layer's output)"
    if source.format == "tflite":
        from edgekit.debug.capture_litert import capture_litert

        return capture_litert(source.path, samples), "LiteRT on the source .tflite"
    if source.format == "onnx":
        from edgekit.debug.capture_onnx import capture_onnx

        return capture_onnx(source.path, samples), "onnxruntime on the source .onnx"
    from edgekit.debug.capture_litert import capture_litert
    from edgekit.pipeline import convert

    floating = convert(source, "host-cpu", "tflite", "none", registry_uri=registry_uri)
    return capture_litert(floating.artifact.primary_path, samples), "LiteRT on the float .tflite of the SavedModel"


def capture_converted(artifact, samples) -> Capture:
    if artifact.backend == "tflite":
        from edgekit.debug.capture_litert import capture_litert

        return capture_litert(artifact.primary_path, samples)
    if artifact.backend == "tflm":
        from edgekit.debug.capture_tflm import capture_tflm

        return capture_tflm(artifact.primary_path, samples)
    if artifact.backend == "aot":
        from edgekit.debug.capture_aot import capture_aot_artifact

        return capture_aot_artifact(artifact, samples)
    from edgekit.debug.capture_onnx import capture_onnx

    quantization = [(s.scale, s.zero_point) if s.quantized else None for s in artifact.inputs]
    return capture_onnx(artifact.primary_path, samples, quantization)
