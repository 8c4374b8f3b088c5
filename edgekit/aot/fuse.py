"""A convolution fused with the ADD that consumes its output (ResNet blocks).

    y = CONV_2D(x, w, bias)            out = CONV_2D+ADD(x, w, bias, r)
    out = ADD(y, r)            ->       (y never stored)

The fused node runs where the convolution ran; its kernel requantizes each
output value as the convolution does and puts it through the ADD's own
arithmetic with r's value at the same position (kernels/ek_conv_taps.h), so
the result is bit for bit the pair's. y is no longer written, and `out` may be
written over r (read element by element just before each write) when r dies
there, as well as over x at the convolution's lag: a residual block then
needs its input and one convolution output live, not three tensors.

A pair fuses when the convolution's emitter can run it fused (`fuses_add`),
y feeds nothing but that ADD and is no model output, the ADD adds two int8
tensors of one shape (no broadcasting), and r already exists when the
convolution runs (a model input, a constant, or written by an earlier node).
"""

from __future__ import annotations

from dataclasses import replace

from edgekit.aot.graph import Graph, Node
from edgekit.aot.ops.base import EmitContext, emitter_for
from edgekit.aot.ops.conv import FUSED_ADD, FUSED_CONV_OUTPUT, RESIDUAL


def fuse_conv_add(graph: Graph, ctx: EmitContext) -> Graph:
    """The graph with every fusable CONV_2D + ADD pair as one node (the ADD's node removed)."""
    written_at = {t: n.index for n in graph.nodes for t in n.outputs if t >= 0}
    fused: dict[int, Node] = {}  # conv node index -> fused node
    dropped: set[int] = set()
    for node in graph.nodes:
        add = _fusable_add(graph, ctx, node, written_at)
        if add is None or add.index in dropped:
            continue
        y = node.outputs[0]
        residual = add.inputs[1] if add.inputs[0] == y else add.inputs[0]
        bias = node.inputs[2] if len(node.inputs) > 2 else -1
        fused[node.index] = replace(
            node,
            inputs=(node.inputs[0], node.inputs[1], bias, residual),
            outputs=add.outputs,
            options={**node.options, FUSED_ADD: add, FUSED_CONV_OUTPUT: y},
        )
        dropped.add(add.index)
    if not fused:
        return graph
    nodes = [fused.get(n.index, n) for n in graph.nodes if n.index not in dropped]
    return Graph(graph.name, graph.tensors, nodes, graph.inputs, graph.outputs)


def _fusable_add(graph: Graph, ctx: EmitContext, node: Node, written_at: dict[int, int]) -> Node | None:
    """The ADD this convolution can be fused with, or None."""
    if node.opcode != "CONV_2D" or len(node.outputs) != 1 or node.outputs[0] in graph.outputs:
        return None
    emitter = emitter_for(node.opcode)
    if not getattr(emitter, "fuses_add", None) or not emitter.fuses_add(node, ctx):
        return None
    y = node.outputs[0]
    consumers = graph.consumers(y)
    if len(consumers) != 1 or consumers[0].opcode != "ADD":
        return None
    add = consumers[0]
    if len(add.inputs) != 2 or add.inputs[0] == add.inputs[1] or len(add.outputs) != 1:
        return None
    residual = add.inputs[1] if add.inputs[0] == y else add.inputs[0]
    tensors = [ctx.tensor(t) for t in (*add.inputs, *add.outputs)]
    if any(t.dtype != "int8" or t.shape != tensors[0].shape for t in tensors):
        return None
    if emitter_for("ADD").check(add, ctx) is not None:
        return None
    # r must exist when the convolution runs
    if written_at.get(residual, -1) >= node.index:
        return None
    return add
