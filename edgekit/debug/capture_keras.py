"""The float reference for a Keras source: one sub-model that returns every layer's output.

Built over the model's own graph (no retraining, no copy of weights), so a
batch of samples yields every layer's activations in one call. Layers with
several outputs (nested models) are left out: their insides are not layers
of this graph.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgekit.debug.capture import Capture, Captured

_BATCH = 64


def capture_keras(path: Path, samples: list[list[np.ndarray]]) -> Capture:
    from edgekit.sources.keras import load_keras

    model = load_keras(Path(path))
    keras_module = __import__(type(model).__module__.split(".")[0])  # tf_keras or keras, as loaded
    input_ids = {id(t) for t in model.inputs}
    layers, tensors = [], []
    for layer in model.layers:
        try:
            output = layer.output
        except (AttributeError, ValueError):  # a layer used more than once has no single output
            continue
        if isinstance(output, (list, tuple)) or id(output) in input_ids:
            continue
        layers.append(layer)
        tensors.append(output)
    probe = keras_module.Model(model.inputs, tensors)
    input_names = [f"input_{i}" for i in range(len(model.inputs))]

    per_input = [np.concatenate([s[k] for s in samples]).astype(np.float32) for k in range(len(model.inputs))]
    batches = []
    for start in range(0, len(samples), _BATCH):
        chunk = [x[start : start + _BATCH] for x in per_input]
        result = probe(chunk if len(chunk) > 1 else chunk[0], training=False)
        batches.append([np.asarray(r) for r in (result if isinstance(result, (list, tuple)) else [result])])
    outputs = [np.concatenate([b[k] for b in batches]) for k in range(len(layers))]

    # (samples, batch of 1, ...): the layout of the runtimes that run one sample at a time
    captured = [Captured(name, -1, "Input", x[:, None]) for name, x in zip(input_names, per_input)]
    for position, (layer, values) in enumerate(zip(layers, outputs)):
        captured.append(Captured(layer.name, position, type(layer).__name__, values[:, None]))
    output_ids = [id(t) for t in model.outputs]
    by_id = {id(t): layer.name for layer, t in zip(layers, tensors)}
    return Capture(
        runtime="keras",
        tensors=captured,
        inputs=input_names,
        outputs=[by_id.get(i, "") for i in output_ids],
    )
