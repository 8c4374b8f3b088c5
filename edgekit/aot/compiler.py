"""The AOT compiler driver: .tflite -> graph -> memory plan -> emitters -> C bundle.

`compile_model` is the one entry point; it writes `<name>.h` and `<name>.c`
into a folder atomically (a temp folder renamed into place by the caller, or
files written beside each other only when everything succeeded).
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from edgekit.aot.codegen import (
    BundleParts,
    DebugSlot,
    c_identifier,
    compact_kernels,
    render_header,
    render_source,
)
from edgekit.aot.fuse import fuse_conv_add
from edgekit.aot.graph import Graph, TensorInfo, graph_from_model
from edgekit.aot.ops.conv import FUSED_ADD
from edgekit.aot.ops.base import EmitContext, c_type, emitter_for
from edgekit.aot.planner import MemoryPlan, plan_memory
from edgekit.errors import EdgekitError

#: The rounding of MultiplyByQuantizedMultiplier in the TFLM build the bundle must
#: match. The pip `tflite-micro` interpreter uses the double (gemmlowp) rounding:
#: tests/test_aot_quant.py checks this empirically on rounding-tie inputs.
TFLM_SINGLE_ROUNDING = False

#: `--optimize` modes (edgekit.core.OPTIMIZE_MODES) and the default. On the Cortex-M
#: DSP path: `speed` stores conv and depthwise filters and fully connected
#: weights widened to int16 and three requantization parameters per channel;
#: `balanced` the same conv filters, int8 fully connected weights and two
#: parameters (as much flash as TFLM's multipliers and shifts). Elsewhere
#: those two compile to the same code. `size`, on every target but Helium's:
#: the compact kernels (kernels/ek_compact.h), which read the model's int8
#: filters as they are, its raw biases and one requantization word per
#: channel (edgekit/aot/channel_params.py), SOFTMAX's exp computed, and each
#: kernel compiled once, for size (codegen.COMPACT_KERNELS).
OPTIMIZE_DEFAULT = "balanced"

SIZE_SUMMARY = ("the model's int8 weights as they are, raw biases and one requantization word per channel "
                "(compact kernels), each kernel compiled once, for size")  # fmt: skip


def optimize_summary(optimize: str, features) -> str:
    """What `optimize` changes for a target with `features`, for the fit report."""
    if compact_kernels(optimize, features):
        return SIZE_SUMMARY
    if "mve" in features:  # the Helium kernels take int8 weights and TFLM's parameters in every mode
        return "int8 weights for the Helium (MVE) kernels in every mode"
    if "dsp" not in features:
        return "the same code for speed and balanced on this target"
    return {
        "speed": "int16 conv filters and fully connected weights (SMLAD without unpacking), "
        "3 requantization parameters per channel",
        "balanced": "int16 conv filters (SMLAD without unpacking), 2 requantization parameters per channel",
    }[optimize]


#: backends that take a model this compiler cannot (named in the unsupported-ops error)
FALLBACK_BACKENDS = ("tflite", "tflm")


class UnsupportedOpsError(EdgekitError):
    """The model has operators the aot compiler cannot compile; lists all of them."""

    def __init__(self, model_label: str, problems: list[str]):
        counts = Counter(problems)
        listed = ", ".join(f"{p} (x{n})" if n > 1 else p for p, n in counts.items())
        super().__init__(
            f"the aot backend cannot compile {model_label}: unsupported operators: {listed}; "
            f"convert it with --backend {' or --backend '.join(FALLBACK_BACKENDS)} instead"
        )
        self.problems = sorted(counts)


@dataclass
class CompiledBundle:
    """What the compiler produced and the facts a report wants."""

    name: str
    header: str
    source: str
    arena_bytes: int
    weights_bytes: int
    ops: list[str]
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    plan: MemoryPlan
    features: frozenset[str] = field(default_factory=frozenset)
    single_rounding: bool = TFLM_SINGLE_ROUNDING
    optimize: str = OPTIMIZE_DEFAULT
    #: the debug build's operator outputs (None for the normal build)
    debug_slots: list[DebugSlot] | None = None

    def write(self, out_dir: Path) -> tuple[Path, Path]:
        """Write `<name>.h` and `<name>.c` into `out_dir` (each via a temp file + rename)."""
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = []
        for suffix, text in ((".h", self.header), (".c", self.source)):
            target = out_dir / f"{self.name}{suffix}"
            fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=f".{self.name}", suffix=suffix)
            try:
                with os.fdopen(fd, "w") as f:
                    f.write(text)
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
            paths.append(target)
        return paths[0], paths[1]


def _pointer_expr(graph: Graph, plan: MemoryPlan, t: int) -> str | None:
    """C expression of tensor t's data pointer, or None for constants (defined lazily)."""
    info = graph.tensors[t]
    ctype = c_type(info.dtype)
    r = plan.roots.get(t, t)
    if graph.tensors[r].is_const:
        return None
    if r in graph.inputs:
        return f"((const {ctype} *)inputs[{graph.inputs.index(r)}])"
    if r in graph.outputs:
        return f"(({ctype} *)outputs[{graph.outputs.index(r)}])"
    return f"(({ctype} *)(activations + {plan.offsets[r]}))"


def compile_graph(
    graph: Graph,
    *,
    source_label: str,
    features: frozenset[str] | set[str] = frozenset(),
    single_rounding: bool = TFLM_SINGLE_ROUNDING,
    optimize: str = OPTIMIZE_DEFAULT,
    debug: bool = False,
) -> CompiledBundle:
    """Compile a graph; `debug` adds `<name>_run_debug`, which copies out every operator's output."""
    from edgekit.core import OPTIMIZE_MODES

    if optimize not in OPTIMIZE_MODES:
        raise ValueError(f"optimize must be one of {', '.join(OPTIMIZE_MODES)}, not {optimize!r}")
    features = frozenset(features)
    if "mve" in features:  # every Helium core has the DSP extension, and ek_mve.h builds on its path
        features |= {"dsp"}
    ctx = EmitContext(
        graph=graph, pointers={}, single_rounding=single_rounding, features=features, optimize=optimize
    )

    problems = []
    emitters = []
    for node in graph.nodes:
        emitter = emitter_for(node.opcode)
        if emitter is None:
            problems.append(node.opcode)
            continue
        reason = emitter.check(node, ctx)
        if reason:
            problems.append(f"{node.opcode} ({reason})")
        emitters.append(emitter)
    for group, kind in ((graph.inputs, "input"), (graph.outputs, "output")):
        for t in group:
            if graph.tensors[t].dtype not in ("int8", "uint8", "int16", "int32", "float32"):
                problems.append(f"model {kind} of type {graph.tensors[t].dtype}")
    for t in graph.outputs:
        if graph.tensors[t].is_const or t in graph.inputs:
            problems.append("model output that is a constant or a model input")
    if problems:
        raise UnsupportedOpsError(source_label, problems)

    model_ops = [n.opcode for n in graph.nodes]
    if not debug:  # the debug build copies out every operator's output, the fused ones' too
        graph = fuse_conv_add(graph, ctx)
        ctx.graph = graph
        emitters = [emitter_for(n.opcode) for n in graph.nodes]
    aliased = {n.index for n, e in zip(graph.nodes, emitters) if e.aliases_input(n, ctx)}
    scratch = {n.index: e.scratch_bytes(n, ctx) for n, e in zip(graph.nodes, emitters)}
    overwrites = {n.index: e.overwrites(n, ctx) for n, e in zip(graph.nodes, emitters)}
    plan = plan_memory(graph, aliased, scratch, overwrites)

    for t in plan.roots:
        expr = _pointer_expr(graph, plan, t)
        if expr is not None:
            ctx.pointers[t] = expr
    for node_index, offset in plan.scratch_offsets.items():
        ctx.scratch_pointers[node_index] = f"((void *)(activations + {offset}))"
    # a constant reinterpreted (RESHAPE of a constant) points at its source's array
    for t, r in plan.roots.items():
        if t != r and graph.tensors[r].is_const:
            ctx.pointers[t] = ctx.ptr(r)

    body, kernels = [], []
    for node, emitter in zip(graph.nodes, emitters):
        out_names = ", ".join(graph.tensors[t].name for t in node.outputs if t >= 0)
        code = emitter.emit(node, ctx).strip()
        opcode = f"{node.opcode}+ADD" if node.option(FUSED_ADD) is not None else node.opcode
        body.append(f"/* {node.index}: {opcode} -> {out_names} */\n" + (code or "/* no code: aliases its input */"))
        for k in emitter.kernels:
            if k not in kernels:
                kernels.append(k)

    debug_slots = _debug_slots(graph, ctx) if debug else None
    name = c_identifier(graph.name)
    inputs = [graph.tensors[t] for t in graph.inputs]
    outputs = [graph.tensors[t] for t in graph.outputs]
    parts = BundleParts(
        name=name,
        source_label=source_label,
        inputs=inputs,
        outputs=outputs,
        arena_bytes=plan.arena_bytes,
        arena_lower_bound=plan.lower_bound,
        weights_bytes=ctx.constant_bytes,
        kernels=kernels,
        constants=ctx.constants,
        body=body,
        single_rounding=single_rounding,
        dsp="dsp" in features,
        mve="mve" in features,
        debug_slots=debug_slots,
        compact=compact_kernels(optimize, features),
    )
    return CompiledBundle(
        name=name,
        header=render_header(parts),
        source=render_source(parts),
        arena_bytes=plan.arena_bytes,
        weights_bytes=ctx.constant_bytes,
        ops=model_ops,
        inputs=inputs,
        outputs=outputs,
        plan=plan,
        features=features,
        single_rounding=single_rounding,
        optimize=optimize,
        debug_slots=debug_slots,
    )


def _debug_slots(graph: Graph, ctx: EmitContext) -> list[DebugSlot]:
    """One slot per operator output, in execution order (an aliasing RESHAPE included)."""
    slots = []
    for node in graph.nodes:
        for t in node.outputs:
            if t < 0:
                continue
            info = graph.tensors[t]
            slots.append(DebugSlot(len(slots), node.index, node.opcode, t, info.name, info.nbytes, ctx.ptr(t)))
    return slots


def compile_model(
    model: bytes | str | Path,
    *,
    name: str | None = None,
    features: frozenset[str] | set[str] = frozenset(),
    single_rounding: bool = TFLM_SINGLE_ROUNDING,
    optimize: str = OPTIMIZE_DEFAULT,
    debug: bool = False,
) -> CompiledBundle:
    """Compile a .tflite (bytes or path) into a C bundle called `name` (default: file stem).

    `optimize` is one of edgekit.core.OPTIMIZE_MODES (see OPTIMIZE_DEFAULT). `debug` builds the debug variant (see `compile_graph`); the normal build is unchanged by it.

    Raises InvalidModelError for a malformed model, KernelLimitError for a
    quantized multiplier out of the kernels' range, and UnsupportedOpsError
    (listing every unsupported operator) for one it cannot compile.
    """
    from edgekit.tflite.limits import check_kernel_limits
    from edgekit.tflite.reader import read_model

    if isinstance(model, (str, Path)):
        label = Path(model).name
        default_name = Path(model).stem
    else:
        label = "the model"
        default_name = "model"
    parsed = read_model(model)
    # the emitters reproduce TFLM's fixed-point arithmetic, so TFLM's kernel limits are theirs too
    check_kernel_limits(parsed, "aot", label)
    graph = graph_from_model(parsed, c_identifier(name or default_name))
    return compile_graph(
        graph, source_label=label, features=features, single_rounding=single_rounding, optimize=optimize,
        debug=debug,
    )  # fmt: skip
