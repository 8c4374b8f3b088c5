"""Static memory plan: every intermediate tensor gets a fixed offset in one arena.

Tensors whose lifetimes (first write .. last read, in execution order) overlap
never share bytes; others may. Placement is greedy by size, largest first, at
the lowest aligned offset that fits (the strategy of TFLM's
GreedyMemoryPlanner), so the arena compares directly with TFLM's.

Model inputs and outputs live in the caller's buffers, constants in flash,
and a tensor that is another one reinterpreted (RESHAPE) shares its storage.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edgekit.aot.graph import Graph

ALIGNMENT = 16


def align(n: int, alignment: int = ALIGNMENT) -> int:
    return (n + alignment - 1) // alignment * alignment


@dataclass
class Buffer:
    key: tuple  # ('tensor', root index) or ('scratch', node index)
    size: int
    first: int
    last: int
    offset: int = -1


@dataclass
class MemoryPlan:
    """Where each tensor lives: 'arena' (offset), 'input'/'output' (position), 'const', 'alias'."""

    arena_bytes: int
    roots: dict[int, int]  # tensor index -> the tensor whose storage it uses
    offsets: dict[int, int]  # root tensor index -> arena offset
    scratch_offsets: dict[int, int] = field(default_factory=dict)  # node index -> offset
    buffers: list[Buffer] = field(default_factory=list)


def plan_memory(
    graph: Graph,
    aliased_nodes: set[int],
    scratch: dict[int, int],
) -> MemoryPlan:
    """Plan the arena. `aliased_nodes`: nodes whose output reuses input 0's storage."""
    roots: dict[int, int] = {}

    def root(t: int) -> int:
        while t in roots and roots[t] != t:
            t = roots[t]
        return t

    outputs = set(graph.outputs)
    for node in graph.nodes:
        if node.index in aliased_nodes:
            src, dst = node.inputs[0], node.outputs[0]
            if dst not in outputs:
                roots[dst] = root(src)

    # lifetime of each storage root over the nodes that write or read any tensor using it
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for node in graph.nodes:
        for t in node.outputs:
            if t < 0:
                continue
            r = root(t)
            first.setdefault(r, node.index)
            last[r] = max(last.get(r, node.index), node.index)
        for t in node.inputs:
            if t < 0:
                continue
            r = root(t)
            first.setdefault(r, node.index)
            last[r] = max(last.get(r, node.index), node.index)

    inputs = set(graph.inputs)
    buffers: list[Buffer] = []
    for r in first:
        info = graph.tensors[r]
        if info.is_const or r in inputs or r in outputs:
            continue
        buffers.append(Buffer(("tensor", r), align(info.nbytes), first[r], last[r]))
    for node_index, nbytes in scratch.items():
        if nbytes > 0:
            buffers.append(Buffer(("scratch", node_index), align(nbytes), node_index, node_index))

    placed: list[Buffer] = []
    for buf in sorted(buffers, key=lambda b: (-b.size, b.first, str(b.key))):
        conflicts = sorted(
            (p for p in placed if p.first <= buf.last and buf.first <= p.last),
            key=lambda p: p.offset,
        )
        offset = 0
        for p in conflicts:
            if offset + buf.size <= p.offset:
                break
            offset = max(offset, p.offset + p.size)
        buf.offset = offset
        placed.append(buf)

    arena = max((b.offset + b.size for b in placed), default=0)
    all_tensors = {t for n in graph.nodes for t in (*n.inputs, *n.outputs) if t >= 0}
    return MemoryPlan(
        arena_bytes=arena,
        roots={t: root(t) for t in all_tensors | inputs | outputs},
        offsets={b.key[1]: b.offset for b in placed if b.key[0] == "tensor"},
        scratch_offsets={b.key[1]: b.offset for b in placed if b.key[0] == "scratch"},
        buffers=placed,
    )
