"""The op resolver a model needs: exactly its operators, no `AllOpsResolver`.

A `tflite::MicroMutableOpResolver<N>` reserves room for N registrations, and
every kernel registered is linked into the firmware; so N is the number of
distinct operators the model uses and each of them is added once.
"""

from __future__ import annotations

from edgekit.errors import EdgekitError
from edgekit.tflm.ops import resolver_method


class UnsupportedOpError(EdgekitError):
    """The model uses operators TensorFlow Lite Micro has no kernel for."""

    def __init__(self, ops: list[str]):
        super().__init__(
            f"TensorFlow Lite Micro has no kernel for {', '.join(ops)}: "
            "replace the operator in the model or use another backend (e.g. --backend aot)"
        )
        self.ops = ops


def resolver_methods(ops: list[str]) -> list[str]:
    """The `AddXxx` method of each op, in the given order; one error names every unsupported op."""
    missing = [op for op in ops if resolver_method(op) is None]
    if missing:
        raise UnsupportedOpError(missing)
    return [resolver_method(op) for op in ops]


def render_ops_header(ops: list[str], function: str = "ek_register_ops") -> str:
    """`model_ops.h`: one inline function that fills a resolver sized for exactly `ops`."""
    methods = resolver_methods(ops)
    lines = [
        "#ifndef EDGEKIT_MODEL_OPS_H_",
        "#define EDGEKIT_MODEL_OPS_H_",
        "",
        '#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"',
        "",
        f"// The {len(ops)} operators the model uses, read from its flatbuffer.",
        f"constexpr int kModelOpCount = {len(ops)};",
        "using ModelOpResolver = tflite::MicroMutableOpResolver<kModelOpCount>;",
        "",
        "// Registers every operator of the model; returns kTfLiteError if one fails.",
        f"inline TfLiteStatus {function}(ModelOpResolver &resolver) {{",
    ]
    for op, method in zip(ops, methods):
        lines.append(f"  if (resolver.{method}() != kTfLiteOk) return kTfLiteError;  // {op}")
    lines += ["  return kTfLiteOk;", "}", "", "#endif  // EDGEKIT_MODEL_OPS_H_", ""]
    return "\n".join(lines)
