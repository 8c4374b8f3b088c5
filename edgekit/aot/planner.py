"""Static memory plan: every intermediate tensor gets a fixed offset in one arena.

A buffer (a tensor's storage, or a node's scratch) is live from the node that
first writes it to the node that last reads it. Buffers live at the same node
never share bytes, with one exception: an output may be written over an
input that dies at its node, when the node's emitter says how (`overwrites`:
the lag, see edgekit/aot/inplace.py). The output then starts at least the lag
before that input, or clear of it.

Placement is greedy: each buffer at the lowest aligned offset that its
placed neighbours allow, in a few orders (largest first, as TFLM's
GreedyMemoryPlanner; by first use; from the last written; the busiest
node's first), then, while the arena is above the lower bound, in seeded
random orders as many as the graph's size affords; the smallest arena wins. Beside it the
plan reports a lower bound no placement can beat: the most bytes live at any
one node, less what in-place outputs may share with the inputs they
overwrite.

Model inputs and outputs live in the caller's buffers, constants in flash,
and a tensor that is another one reinterpreted (RESHAPE) shares its storage.
"""

from __future__ import annotations

import random
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
    #: no plan of these buffers fits in fewer bytes: the most live at one node, less in-place sharing
    lower_bound: int = 0
    #: the node where that many bytes are live (-1 for an empty arena)
    peak_node: int = -1
    #: (output root, input root) -> lag: the output may be written over the input (see module doc)
    overwrites: dict[tuple[int, int], int] = field(default_factory=dict)


def plan_memory(
    graph: Graph,
    aliased_nodes: set[int],
    scratch: dict[int, int],
    overwrites: dict[int, dict[int, int]] | None = None,
) -> MemoryPlan:
    """Plan the arena.

    `aliased_nodes`: nodes whose output reuses input 0's storage; `scratch`:
    bytes of scratch per node; `overwrites`: per node, input position -> lag
    for inputs its output may be written over (emitters' `overwrites`).
    """
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
        for t in (*node.outputs, *node.inputs):
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

    in_arena = {b.key[1] for b in buffers if b.key[0] == "tensor"}
    shared: dict[tuple[int, int], int] = {}  # (output root, input root) -> lag
    for node in graph.nodes:
        for position, node_lag in (overwrites or {}).get(node.index, {}).items():
            t_in, t_out = node.inputs[position], node.outputs[0]
            if t_in < 0:
                continue
            r_in, r_out = root(t_in), root(t_out)
            # only an input that dies here, written over by an output born here
            dies_here, born_here = last[r_in] == node.index, first[r_out] == node.index
            if r_in in in_arena and r_out in in_arena and r_in != r_out and dies_here and born_here:
                key = (r_out, r_in)
                shared[key] = max(shared.get(key, 0), align(node_lag))

    bound, peak = lower_bound(buffers, shared)

    def at_peak(b: Buffer) -> bool:
        return b.first <= peak <= b.last

    orders = [
        *_ORDERS,
        # the buffers of the busiest node first, laid out from its output down
        lambda b: (not at_peak(b), -b.first, -b.size, str(b.key)),
        lambda b: (not at_peak(b), -b.size, b.first, str(b.key)),
        # scratch (small, one node long) last, into the gaps the tensors leave
        lambda b: (not at_peak(b), b.key[0] == "scratch", -b.first, -b.size, str(b.key)),
        lambda b: (b.key[0] == "scratch", not at_peak(b), -b.first, -b.size, str(b.key)),
    ]
    best: list[Buffer] | None = None
    for order in orders:
        placed = _place([Buffer(b.key, b.size, b.first, b.last) for b in buffers], order, shared)
        if best is None or _extent(placed) < _extent(best):
            best = placed
        if _extent(best) == bound:
            break
    # then seeded random orders (the same plan every time), as many as a small graph affords
    rng = random.Random(0)
    tries = min(RANDOM_ORDERS, RANDOM_WORK // max(1, len(buffers)) ** 2)
    for _ in range(tries if best and _extent(best) > bound else 0):
        rank = {b.key: rng.random() for b in buffers}
        placed = _place([Buffer(b.key, b.size, b.first, b.last) for b in buffers], lambda b: rank[b.key], shared)
        if _extent(placed) < _extent(best):
            best = placed
            if _extent(best) == bound:
                break
    placed = best or []

    all_tensors = {t for n in graph.nodes for t in (*n.inputs, *n.outputs) if t >= 0}
    return MemoryPlan(
        arena_bytes=_extent(placed),
        roots={t: root(t) for t in all_tensors | inputs | outputs},
        offsets={b.key[1]: b.offset for b in placed if b.key[0] == "tensor"},
        scratch_offsets={b.key[1]: b.offset for b in placed if b.key[0] == "scratch"},
        buffers=placed,
        lower_bound=bound,
        peak_node=peak,
        overwrites=shared,
    )


#: random placement orders tried when the fixed ones miss the lower bound, and the work
#: (orders x buffers^2) they may take: a few hundred for a small model, none for a large one
RANDOM_ORDERS = 200
RANDOM_WORK = 200_000


def _extent(placed: list[Buffer]) -> int:
    return max((b.offset + b.size for b in placed), default=0)


#: orders to place buffers in; the plan keeps the smallest arena any of them gives
_ORDERS = (
    lambda b: (-b.size, b.first, str(b.key)),  # largest first (TFLM's greedy planner)
    lambda b: (b.first, -b.size, str(b.key)),  # in the order the nodes write them
    # last written first: an output written over its input must start below it, so a
    # chain of in-place operators is laid out from its end, each input just above its output
    lambda b: (-b.first, -b.size, str(b.key)),
)


def _forbidden(buf: Buffer, other: Buffer, shared: dict[tuple[int, int], int]) -> tuple[int, int]:
    """The open interval of offsets `buf` may not take, given `other` placed and live with it."""
    key = buf.key[1] if buf.key[0] == "tensor" else None
    other_key = other.key[1] if other.key[0] == "tensor" else None
    if (key, other_key) in shared:  # buf is written over other: start lag before it, or past it
        return other.offset - shared[(key, other_key)], other.offset + other.size
    if (other_key, key) in shared:  # other is written over buf: buf starts lag after other
        return other.offset - buf.size, other.offset + shared[(other_key, key)]
    return other.offset - buf.size, other.offset + other.size


def _place(buffers: list[Buffer], order, shared: dict[tuple[int, int], int]) -> list[Buffer]:
    placed: list[Buffer] = []
    for buf in sorted(buffers, key=order):
        walls = [_forbidden(buf, p, shared) for p in placed if p.first <= buf.last and buf.first <= p.last]
        # the lowest offset outside every forbidden interval is 0 or one of their right ends
        for offset in sorted({0, *(hi for _, hi in walls if hi > 0)}):
            if all(not (lo < offset < hi) for lo, hi in walls):
                buf.offset = align(offset)
                break
        placed.append(buf)
    return placed


def lower_bound(buffers: list[Buffer], shared: dict[tuple[int, int], int]) -> tuple[int, int]:
    """(bytes, node): the most bytes live at one node that no two placements can share.

    Buffers live at the same node are disjoint, except an output and the
    inputs it may be written over: it starts at least the lag before each
    input it overlaps, so it shares at most its size less the smallest lag,
    and no more than those inputs' sizes.
    """
    by_key = {b.key[1]: b for b in buffers if b.key[0] == "tensor"}
    steps = sorted({b.first for b in buffers} | {b.last for b in buffers})
    bound, peak = 0, -1
    for step in steps:
        live = [b for b in buffers if b.first <= step <= b.last]
        total = sum(b.size for b in live)
        live_keys = {b.key[1] for b in live if b.key[0] == "tensor"}
        credits: dict[int, list[tuple[int, int]]] = {}
        for (out_key, in_key), pair_lag in shared.items():
            out = by_key[out_key]
            if out.first == step and in_key in live_keys and by_key[in_key].last == step:
                credits.setdefault(out_key, []).append((by_key[in_key].size, pair_lag))
        for out_key, pairs in credits.items():
            size = by_key[out_key].size
            shareable = min(size - min(pair_lag for _, pair_lag in pairs),
                            sum(min(in_size, size - pair_lag) for in_size, pair_lag in pairs))
            total -= max(0, shareable)
        if total > bound:
            bound, peak = total, step
    return bound, peak
