"""onnxruntime's view: every node output made a graph output, read after each run.

Only float values are kept: the integer tensors inside a dynamically
quantized graph carry their scale in another tensor, computed per run, and
the float tensors around them are what the layers produce.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit._lazy import require
from edgekit.debug.capture import Capture, Captured, stack, to_input
from edgekit.errors import InvalidModelError


def capture_onnx(path: Path, samples: list[list[np.ndarray]], input_quantization=None) -> Capture:
    """Run each sample through the model with every node output exposed.

    `input_quantization` is [(scale, zero_point) or None] per input: an int8
    ONNX input has no scale in the file (the artifact's manifest keeps it).
    """
    onnx = require("onnx", "onnx")
    ort = require("onnxruntime", "onnx")
    model = onnx.load(str(path))
    graph_outputs = [o.name for o in model.graph.output]
    known = set(graph_outputs)
    positions: dict[str, tuple[int, str]] = {}
    for position, node in enumerate(model.graph.node):
        for name in node.output:
            if name:
                positions[name] = (position, node.op_type)
                if name not in known:
                    model.graph.output.append(onnx.ValueInfoProto(name=name))
                    known.add(name)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(model.SerializeToString(), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own types for a bad file
        raise InvalidModelError(f"{path}: onnxruntime cannot load this model ({exc})") from None
    inputs = session.get_inputs()
    quantization = input_quantization or [None] * len(inputs)
    names = [o.name for o in session.get_outputs()]
    values: dict[str, list[np.ndarray]] = {n: [] for n in names}
    fed: list[list[np.ndarray]] = [[] for _ in inputs]
    for sample in samples:
        feed = {}
        for k, (spec, x) in enumerate(zip(inputs, sample)):
            dtype = "int8" if spec.type == "tensor(int8)" else "float32"
            scale, zero_point = quantization[k] or (None, None)
            feed[spec.name] = to_input(x, dtype, scale, zero_point)
            fed[k].append(feed[spec.name])
        for name, value in zip(names, session.run(names, feed)):
            values[name].append(np.asarray(value))

    tensors = [
        Captured(spec.name, -1, "INPUT", stack(fed[k]), *(quantization[k] or (None, None)))
        for k, spec in enumerate(inputs)
    ]
    for name in sorted(positions, key=lambda n: positions[n][0]):
        per_sample = values.get(name)
        if not per_sample or per_sample[0].dtype.kind != "f":
            continue
        if any(v.shape != per_sample[0].shape for v in per_sample):
            continue  # a shape that changes with the input (Shape, NonZero): not a layer
        position, op = positions[name]
        tensors.append(Captured(name, position, op, stack(per_sample)))
    return Capture("onnxruntime", tensors, [i.name for i in inputs], graph_outputs)
