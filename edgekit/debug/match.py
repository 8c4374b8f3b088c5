"""Pair the tensors of two captures of one model: by name, by layer name, by operator position.

Inputs pair with inputs and outputs with outputs, in the model's order (a
converter renames both: `serving_default_input_1:0`, `StatefulPartitionedCall:0`).
Every other converted tensor looks for its reference, in this order:

1. the same name (the same .tflite on both sides, or ONNX values that kept theirs);
2. a Keras layer named in the converted name: TFLite and tf2onnx name a
   tensor by the ops it fused, `model/block/act/Relu;model/block/conv/BiasAdd`,
   and the fused output is the output of the last of those layers;
3. the same operator position and opcode (two .tflite files of one graph).

Both tensors must hold as many values per sample. ONNX graphs exported from
TensorFlow compute convolutions channels-first (NCHW) where the reference is
channels-last (NHWC); such a tensor is compared after moving its channels last. A reference tensor claimed
twice keeps its last claimant: a layer lowered to several operators
(Dense on a 3-D input: RESHAPE, FULLY_CONNECTED, RESHAPE) ends at the last.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from edgekit.debug.capture import Capture, Captured

_OUTPUT_SUFFIX = re.compile(r":\d+$")


@dataclass
class Pair:
    reference: Captured
    converted: Captured
    how: str  # "input", "output", "name", "layer", "position"

    def converted_real(self) -> np.ndarray:
        """The converted tensor's real values, (samples, elements), in the reference's layout."""
        return aligned(self.reference, self.converted)


def aligned(reference: Captured, converted: Captured) -> np.ndarray:
    ref_shape, conv_shape = reference.values.shape[1:], converted.values.shape[1:]
    candidates = []
    if conv_shape == ref_shape:
        candidates.append(converted.real())
    if len(conv_shape) >= 3:
        # (batch, C, d1, ..., dk) -> (batch, d1, ..., dk, C)
        axes = (0, 1, *range(3, len(conv_shape) + 1), 2)
        moved = np.transpose(converted.values, axes)
        if moved.shape[1:] == ref_shape:
            candidates.append(_real(converted, moved))
    if not candidates:  # same number of values in another shape (a Flatten, a squeezed batch)
        return converted.real()
    if len(candidates) == 1:
        return candidates[0]
    # both layouts fit (C == H == W): the one that agrees is the right one
    ref = reference.real()
    return min(candidates, key=lambda c: float(np.sum((c - ref) ** 2)))


def _real(tensor: Captured, values: np.ndarray) -> np.ndarray:
    return Captured(tensor.name, tensor.position, tensor.op, values, tensor.scale, tensor.zero_point).real()


@dataclass
class Matching:
    pairs: list[Pair]  # in the converted model's execution order
    unmatched: list[Captured]  # converted tensors without a reference


def name_parts(name: str) -> list[str]:
    """The path components of a (possibly fused, `;`-joined) tensor name, without `:0` suffixes."""
    parts = []
    for piece in name.split(";"):
        parts += [_OUTPUT_SUFFIX.sub("", p) for p in piece.split("/") if p]
    return parts


def match(reference: Capture, converted: Capture) -> Matching:
    ref_by_name = reference.by_name()
    conv_by_name = converted.by_name()
    fixed: dict[str, Pair] = {}  # converted name -> pair that nothing overrides
    for role, ref_names, conv_names in (
        ("input", reference.inputs, converted.inputs),
        ("output", reference.outputs, converted.outputs),
    ):
        for r, c in zip(ref_names, conv_names):
            if r in ref_by_name and c in conv_by_name and _same_size(ref_by_name[r], conv_by_name[c]):
                fixed[c] = Pair(ref_by_name[r], conv_by_name[c], role)
    taken = {p.reference.name for p in fixed.values()}
    order = {t.name: i for i, t in enumerate(reference.tensors)}
    by_position = {(t.position, t.op): t for t in reference.tensors if t.position >= 0}

    claims: dict[str, Pair] = {}  # reference name -> the last converted tensor that claimed it
    for tensor in converted.tensors:
        if tensor.name in fixed:
            continue
        found = _find(tensor, ref_by_name, order, by_position, taken)
        if found is not None:
            claims[found.reference.name] = found

    claimed = {p.converted.name: p for p in claims.values()}
    pairs, unmatched = [], []
    for tensor in converted.tensors:
        pair = fixed.get(tensor.name) or claimed.get(tensor.name)
        if pair is None:
            unmatched.append(tensor)
        else:
            pairs.append(pair)
    return Matching(pairs, unmatched)


def _find(tensor: Captured, ref_by_name, order, by_position, taken) -> Pair | None:
    def usable(ref: Captured | None) -> bool:
        return ref is not None and ref.name not in taken and _same_size(ref, tensor)

    same = ref_by_name.get(tensor.name)
    if usable(same):
        return Pair(same, tensor, "name")
    layers = [ref_by_name[p] for p in name_parts(tensor.name) if usable(ref_by_name.get(p))]
    if layers:
        return Pair(max(layers, key=lambda ref: order[ref.name]), tensor, "layer")
    positional = by_position.get((tensor.position, tensor.op))
    if usable(positional):
        return Pair(positional, tensor, "position")
    return None


def _same_size(a: Captured, b: Captured) -> bool:
    return a.per_sample_size == b.per_sample_size
