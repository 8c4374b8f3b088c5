"""The static memory plan: live tensors never share bytes, dead ones do, reshapes alias."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from edgekit.aot.compiler import compile_model
from edgekit.aot.graph import Graph, Node, TensorInfo
from edgekit.aot.planner import ALIGNMENT, plan_memory

MODELS = ("kws_ref_model.tflite", "pretrainedResnet_quant.tflite", "ad01_int8.tflite")


@pytest.mark.parametrize("filename", MODELS)
def test_buffers_alive_together_never_overlap(filename, mlperf_dir):
    plan = compile_model(mlperf_dir / filename).plan
    assert plan.buffers
    for a, b in itertools.combinations(plan.buffers, 2):
        alive_together = a.first <= b.last and b.first <= a.last
        disjoint = a.offset + a.size <= b.offset or b.offset + b.size <= a.offset
        assert disjoint or not alive_together, (a, b)
    for buf in plan.buffers:
        assert buf.offset % ALIGNMENT == 0 and buf.offset + buf.size <= plan.arena_bytes


@pytest.mark.parametrize("filename", MODELS)
def test_arena_is_reused_and_not_larger_than_needed_at_peak(filename, mlperf_dir):
    plan = compile_model(mlperf_dir / filename).plan
    total = sum(b.size for b in plan.buffers)
    steps = range(max(b.last for b in plan.buffers) + 1)
    peak = max(sum(b.size for b in plan.buffers if b.first <= s <= b.last) for s in steps)
    assert peak <= plan.arena_bytes < total  # tensors that never meet share memory
    assert plan.arena_bytes <= 1.25 * peak  # greedy placement stays close to the lower bound


def _tensor(index, shape, data=None):
    return TensorInfo(index=index, name=f"t{index}", shape=shape, dtype="int8", data=data)


def test_chain_ping_pongs_and_reshape_aliases():
    # in -> A -> t1 -> RESHAPE -> t2 -> B -> t3 -> C -> out ; t1/t2 share storage
    tensors = {i: _tensor(i, (1, 64)) for i in range(5)}
    tensors[5] = _tensor(5, (1, 64), data=np.zeros((1, 64), np.int8))
    nodes = [
        Node(0, "A", (0, 5), (1,)),
        Node(1, "RESHAPE", (1,), (2,)),
        Node(2, "B", (2,), (3,)),
        Node(3, "C", (3,), (4,)),
    ]
    graph = Graph("g", tensors, nodes, inputs=(0,), outputs=(4,))
    plan = plan_memory(graph, aliased_nodes={1}, scratch={2: 100})
    assert plan.roots[2] == 1 and 2 not in plan.offsets  # the reshape is its input
    assert 0 not in plan.offsets and 4 not in plan.offsets and 5 not in plan.offsets  # caller's, flash
    # t1 (live 0..2) and t3 (live 2..3) overlap at node 2, as does node 2's scratch
    live_at_2 = [plan.offsets[1], plan.offsets[3], plan.scratch_offsets[2]]
    assert len(set(live_at_2)) == 3
    assert plan.arena_bytes == 64 + 64 + 112  # scratch rounded up to the alignment
