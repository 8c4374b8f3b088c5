"""RESHAPE (and SQUEEZE/EXPAND_DIMS, same bytes): no code, the output shares the input's memory.

Only when the output is the model's output buffer does it cost a copy.
"""

from __future__ import annotations

from edgekit.aot.graph import Node
from edgekit.aot.ops.base import EmitContext, Emitter, register


@register
class Reshape(Emitter):
    opcodes = ("RESHAPE", "SQUEEZE", "EXPAND_DIMS")

    def check(self, node: Node, ctx: EmitContext) -> str | None:
        x, y = ctx.tensor(node.inputs[0]), ctx.tensor(node.outputs[0])
        if x.dtype != y.dtype:
            return f"{x.dtype} to {y.dtype}"
        if x.size != y.size:
            return "element count changes"
        return None

    def aliases_input(self, node: Node, ctx: EmitContext) -> bool:
        return True

    def emit(self, node: Node, ctx: EmitContext) -> str:
        src, dst = ctx.ptr(node.inputs[0]), ctx.ptr(node.outputs[0])
        if src == dst:
            return ""
        return f"memmove({dst}, {src}, {ctx.tensor(node.outputs[0]).nbytes});"
