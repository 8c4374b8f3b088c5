"""Numeric limits of kernel families: models that are valid files but that some kernels cannot compute.

A model that passes validate has nothing wrong with it as a file: every
index, size and offset holds, and LiteRT runs it. Some kernels still cannot
compute parts of it: TFLM's kernels (and the aot compiler's,
which reproduce TFLM's arithmetic bit for bit) turn real-valued scales into
fixed-point multipliers when they prepare an operator, and abort when one
falls out of range. LiteRT's default kernels compute the same operators
another way (SOFTMAX through a lookup table) and run those models. So these
limits are not part of validation: only the backends whose kernels have them
apply them (`check_kernel_limits(model, "tflm", ...)`), and LiteRT is never
refused a model it can run.

Each limit belongs to one operator's record in operators.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from edgekit.errors import EdgekitError
from edgekit.tflite.model import Model, Operator

#: the kernel families that have limits, as messages name them
KERNEL_FAMILIES = {"tflm": "TFLM", "aot": "the aot compiler"}
#: TFLM's kernels and the aot kernels generated to match them bit for bit
TFLM_ARITHMETIC = frozenset({"tflm", "aot"})


class KernelLimitError(EdgekitError):
    """A valid model that one kernel family cannot compute; the message names the operator and why."""


@dataclass(frozen=True)
class KernelLimit:
    """One numeric limit: the kernel families that have it, and its check.

    `check(model, op, family)` returns what is out of range, as the end of a
    sentence that starts with the operator and names the family ("has beta 1.0
    and input scale 1e-09: their product is too small for TFLM's quantized
    kernel"), or None when the operator is within the limit.
    """

    kernels: frozenset[str]
    check: Callable[[Model, Operator, str], str | None]


def _softmax_input_multiplier(model: Model, op: Operator, family: str) -> str | None:
    x = model.tensor(op.inputs[0])
    if x.dtype not in ("int8", "uint8") or x.quantization is None:
        return None  # the float kernel takes any beta
    beta, scale = op.options["beta"], float(x.quantization.scale[0])
    if not (math.isfinite(beta) and beta > 0):
        return f"has beta {beta!r}: {family}'s quantized kernel needs a finite beta > 0"
    # TFLM's PreprocessSoftmaxScaling makes beta * scale * 2**26 a fixed-point multiplier
    # that QuantizeMultiplierGreaterThanOne requires to exceed 1: it aborts otherwise.
    if beta * scale * 2**26 <= 1:
        return (f"has beta {beta!r} and input scale {scale:.3g}: their product is too small for "
                f"{family}'s quantized kernel")
    return None


SOFTMAX_INPUT_MULTIPLIER = KernelLimit(TFLM_ARITHMETIC, _softmax_input_multiplier)


def check_kernel_limits(model: Model, kernels: str, name: str) -> None:
    """Raise KernelLimitError at the first operator that `kernels` ("tflm", "aot") cannot compute.

    `model` has passed validation; `name` labels the message (the file's name).
    """
    # operators.py builds its records from the limits above: import it here, not at the top
    from edgekit.tflite.operators import rule_for

    if kernels not in KERNEL_FAMILIES:
        raise ValueError(f"unknown kernel family {kernels!r}: one of {', '.join(KERNEL_FAMILIES)}")
    for op in model.operators:
        rule = rule_for(op.opcode)
        for limit in rule.limits if rule is not None else ():
            problem = limit.check(model, op, KERNEL_FAMILIES[kernels]) if kernels in limit.kernels else None
            if problem:
                raise KernelLimitError(
                    f"{name}: operator {op.index} ({op.opcode}) {problem} (LiteRT's runs the model: "
                    "the tflite backend, on host and Linux targets)"
                )
