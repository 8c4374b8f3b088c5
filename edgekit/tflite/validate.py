"""The checks every .tflite passes before any interpreter or compiler sees it.

Reading happens in three steps: the header checks, a bounds-checked walk of
the flatbuffer into plain records (walk), then an ordered list of small checks
(`CHECKS`), each raising `ModelCheckError` with its own name in `.check`.
Every subgraph gets the same checks; `Model` exposes subgraph 0, the one
interpreters run, and counts the others.

Beyond the format, the operators with a record in operators.py (the
convolution family, pooling, softmax, add/sub/mul, reshape, concatenation,
pad, the reducers, quantize/dequantize, control flow) are held to what their
kernels assume without checking: arity, types, channel counts, strides,
output shapes. Other operators get the format, index and dataflow checks only.

These checks are what makes a file safe to hand to any interpreter, and every
.tflite passes them. What some kernels cannot compute in a safe file (a
fixed-point multiplier out of range) is not checked here: limits.py holds
those limits, and only the backends whose kernels have them apply them.
"""

from __future__ import annotations

import math

import numpy as np

from edgekit.tflite import schema as S
from edgekit.tflite.flatbuf import Table
from edgekit.tflite.model import Model, Operator, Quantization, Tensor
from edgekit.tflite.operators import QUANTIZED_DTYPES, rule_for
from edgekit.tflite.walk import (
    RawModel,
    RawOperator,
    RawSubgraph,
    RawTensor,
    fail,
    op_label,
    parse_structure,
    printable,
    tensor_label,
    where,
)

_INT32_LIMIT = 2**31 - 1  # element counts and byte sizes must fit an int32 (TFLM uses int)
_UINT64_LIMIT = 2**64 - 1


# ----------------------------------------------------------------------------- header checks


def check_file_size(raw: RawModel) -> None:
    if len(raw.data) < 8:
        fail("file_size", raw, f"the file is {len(raw.data)} bytes, too short for a .tflite model "
              "(truncated?): give the complete file")


def check_root_offset(raw: RawModel) -> None:
    root = int.from_bytes(raw.data[:4], "little")
    if root + 4 > len(raw.data):
        fail("root_offset", raw, f"the root table offset {root} points past the end of the "
              f"{len(raw.data)}-byte file (truncated or not a .tflite model)")


def check_file_identifier(raw: RawModel) -> None:
    ident = raw.data[4:8]
    if ident != S.FILE_IDENTIFIER:
        fail("file_identifier", raw, f"file identifier is {ident!r}, not {S.FILE_IDENTIFIER!r}: "
              "this is not a TFLite flatbuffer (give a .tflite file)")


# ----------------------------------------------------------------------------- model-level checks


def check_schema_version(raw: RawModel) -> None:
    if raw.version != S.SCHEMA_VERSION:
        fail("schema_version", raw, f"schema version is {raw.version}, but edgekit reads version "
              f"{S.SCHEMA_VERSION}: convert the model again with a current TFLite converter")


def check_subgraphs(raw: RawModel) -> None:
    if not raw.subgraphs:
        fail("subgraphs", raw, "the model has no subgraph: there is nothing to run")
    if not raw.subgraphs[0].outputs:
        fail("subgraphs", raw, "the model has no outputs: there is nothing to compute")


def check_operator_codes(raw: RawModel) -> None:
    for i, opcode in enumerate(raw.opcodes):
        if not 0 <= opcode.code < len(S.BUILTIN_OPERATORS):
            fail("operator_codes", raw, f"operator code {i} has builtin code {opcode.code}, which is "
                  "not a TFLite builtin operator")
    for graph in raw.subgraphs:
        for op in graph.operators:
            if op.opcode_index >= len(raw.opcodes):
                fail("operator_codes", raw, f"{where(graph)}operator {op.index} uses operator code "
                      f"{op.opcode_index}, but the model has {len(raw.opcodes)} operator codes")
            opcode = raw.opcodes[op.opcode_index]
            name = S.BUILTIN_OPERATORS[opcode.code]
            if opcode.code == S.CUSTOM_CODE:
                name = f"CUSTOM:{printable(opcode.custom_code or '')}"
            op.opcode = name
            op.version = opcode.version


def check_external_buffers(raw: RawModel) -> None:
    """Buffer.offset/size (data after the flatbuffer) must stay inside the file."""
    for i, buffer in enumerate(raw.buffers):
        has_inline = buffer.inline is not None and buffer.inline[1] > 0
        if buffer.offset > 1:
            if has_inline:
                fail("external_buffers", raw, f"buffer {i} has both inline data and an external offset")
            end = buffer.offset + buffer.size
            if end > _UINT64_LIMIT:
                fail("external_buffers", raw, f"buffer {i} offset {buffer.offset} + size {buffer.size} "
                      "overflows 64 bits")
            if end > len(raw.data):
                fail("external_buffers", raw, f"buffer {i} data at offset {buffer.offset} "
                      f"({buffer.size} bytes) lies past the end of the {len(raw.data)}-byte file "
                      "(truncated?)")
        elif buffer.size:
            fail("external_buffers", raw, f"buffer {i} declares {buffer.size} external bytes but no "
                  "offset where they are")


def check_buffer_indices(raw: RawModel) -> None:
    for graph in raw.subgraphs:
        for tensor in graph.tensors:
            if tensor.buffer >= len(raw.buffers):
                fail("buffer_indices", raw, f"{where(graph)}{tensor_label(graph, tensor.index)} uses "
                      f"buffer {tensor.buffer}, but the model has {len(raw.buffers)} buffers")
            tensor.constant = raw.buffers[tensor.buffer].span() is not None


def check_tensor_indices(raw: RawModel) -> None:
    for graph in raw.subgraphs:
        count = len(graph.tensors)
        for kind, indices in (("inputs", graph.inputs), ("outputs", graph.outputs)):
            for t in indices:
                if not 0 <= t < count:
                    fail("tensor_indices", raw, f"{where(graph)}graph {kind} name tensor {t}, but the "
                          f"{where(graph) or 'model '}has {count} tensors")
        for op in graph.operators:
            for kind, indices, optional in (
                ("reads", op.inputs, True), ("writes", op.outputs, False),
                ("has intermediate", op.intermediates, False),
            ):
                for t in indices:
                    if not (0 <= t < count or (optional and t == -1)):
                        fail("tensor_indices", raw, f"{op_label(graph, op)} {kind} tensor {t}, but "
                              f"the {where(graph) or 'model '}has {count} tensors")


def check_tensor_types(raw: RawModel) -> None:
    for graph in raw.subgraphs:
        for tensor in graph.tensors:
            if not 0 <= tensor.type_code < len(S.TENSOR_TYPES):
                fail("tensor_types", raw, f"{where(graph)}{tensor_label(graph, tensor.index)} has "
                      f"type {tensor.type_code}, which is not a TFLite tensor type")
            tensor.dtype = S.DTYPES[S.TENSOR_TYPES[tensor.type_code]][0]


def _element_size(dtype: str) -> float | None:
    if dtype == "int4":
        return 0.5
    storage = S.DTYPES[dtype.upper()][1]
    return None if storage is None else np.dtype(storage).itemsize


def check_shapes(raw: RawModel) -> None:
    for graph in raw.subgraphs:
        for tensor in graph.tensors:
            label = f"{where(graph)}{tensor_label(graph, tensor.index)}"
            if any(d < 0 for d in tensor.shape):
                fail("shapes", raw, f"{label} has negative dimensions in its shape {tensor.shape}")
            if tensor.signature is not None and (
                len(tensor.signature) != len(tensor.shape)
                or any(s not in (-1, d) for s, d in zip(tensor.signature, tensor.shape))
            ):
                fail("shapes", raw, f"{label} has shape {tensor.shape} but shape signature "
                      f"{tensor.signature}: they must agree except where the signature has -1")
            count = 1
            for d in tensor.shape:
                count *= d
                if count > _INT32_LIMIT:
                    fail("shapes", raw, f"{label} shape {tensor.shape} has more elements than fit "
                          "in 32 bits")
            size = _element_size(tensor.dtype)
            if size is not None and math.ceil(count * size) > _INT32_LIMIT:
                fail("shapes", raw, f"{label} shape {tensor.shape} of {tensor.dtype} needs more "
                      "bytes than fit in 32 bits")


def check_constant_sizes(raw: RawModel) -> None:
    for graph in raw.subgraphs:
        for tensor in graph.tensors:
            span = raw.buffers[tensor.buffer].span()
            size = _element_size(tensor.dtype)
            if span is None or size is None or tensor.sparse:
                continue  # sparse tensors hold compressed values; strings have no fixed size
            expected = math.ceil(math.prod(tensor.shape) * size)
            if span[1] != expected:
                fail("constant_sizes", raw, f"{where(graph)}{tensor_label(graph, tensor.index)} "
                      f"holds {span[1]} bytes of constant data, but shape {tensor.shape} of "
                      f"{tensor.dtype} needs {expected}")


_SMALLEST_SCALE = float(np.finfo(np.float32).tiny)
_ZERO_POINT_RANGE = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767)}


def check_quantization(raw: RawModel) -> None:
    for graph in raw.subgraphs:
        for tensor in graph.tensors:
            if tensor.scale is None or len(tensor.scale) == 0:
                continue  # not quantized (min/max alone are only calibration notes)
            label = f"{where(graph)}{tensor_label(graph, tensor.index)}"
            n = len(tensor.scale)
            zero_points = 0 if tensor.zero_point is None else len(tensor.zero_point)
            if zero_points != n:
                fail("quantization", raw, f"{label} has {n} quantization scales but {zero_points} "
                      "zero points")
            # Subnormal scales pass "> 0" but break the kernels' multiplier arithmetic (abort).
            bad = ~(np.isfinite(tensor.scale) & (tensor.scale >= _SMALLEST_SCALE))
            if bad.any():
                fail("quantization", raw, f"{label} has quantization scale "
                      f"{float(tensor.scale[bad.argmax()])!r}: scales must be finite and > 0 "
                      "(normal float32 numbers)")
            if n > 1:
                rank = len(tensor.shape)
                if not 0 <= tensor.axis < rank:
                    fail("quantization", raw, f"{label} is quantized per channel along axis "
                          f"{tensor.axis}, but it has rank {rank}")
                if tensor.shape[tensor.axis] != n:
                    fail("quantization", raw, f"{label} has {n} quantization scales, but dimension "
                          f"{tensor.axis} of its shape {tensor.shape} is {tensor.shape[tensor.axis]}")
            bounds = _ZERO_POINT_RANGE.get(tensor.dtype)
            if bounds and ((tensor.zero_point < bounds[0]) | (tensor.zero_point > bounds[1])).any():
                fail("quantization", raw, f"{label} has a zero point outside the {tensor.dtype} "
                      f"range {bounds[0]}..{bounds[1]}")


def check_options(raw: RawModel) -> None:
    """Decode the builtin options of the operators with a record; their union type must match."""
    for graph in raw.subgraphs:
        for op in graph.operators:
            rule = rule_for(op.opcode)
            if rule is None or rule.options is None:
                continue
            spec = rule.options
            if op.options_type not in (0, spec.union_type):
                fail("options", raw, f"{op_label(graph, op)} carries builtin options of union "
                      f"type {op.options_type}, not {spec.name}")
            table = op.options_table if op.options_type == spec.union_type else None
            op.options = _decode_options(raw, graph, op, spec, table)


def _decode_options(raw, graph, op, spec: S.OptionsTable, table: Table | None) -> dict:
    options = {}
    for f in spec.fields:
        if table is None or not table.has(f.slot):
            options[f.name] = list(f.default) if isinstance(f.default, tuple) else f.default
        elif f.kind == "i32":
            options[f.name] = table.scalar(f.slot, "i", f.default, f.name)
        elif f.kind == "f32":
            options[f.name] = table.scalar(f.slot, "f", f.default, f.name)
        elif f.kind == "bool":
            options[f.name] = bool(table.scalar(f.slot, "B", 0, f.name))
        elif f.kind == "i32_vector":
            options[f.name] = list(table.scalars(f.slot, "i", f.name) or ())
        elif f.kind == "enum":
            value = table.scalar(f.slot, "b", 0, f.name)
            if not 0 <= value < len(f.enum):
                fail("options", raw, f"{op_label(graph, op)} has {f.name} {value}, which is not "
                      f"one of {', '.join(f.enum)}")
            options[f.name] = f.enum[value]
        else:  # pragma: no cover - the schema tables only use the kinds above
            raise AssertionError(f"unknown option kind {f.kind}")
    return options


def check_required_inputs(raw: RawModel) -> None:
    """Kernels fetch their required inputs without a null check: -1 there crashes them."""
    for graph in raw.subgraphs:
        for op in graph.operators:
            rule = rule_for(op.opcode)
            if rule is None:
                continue
            for position, t in enumerate(op.inputs):
                if t == -1 and position not in rule.optional_inputs:
                    fail("required_inputs", raw, f"{op_label(graph, op)} leaves its required input "
                          f"{position} empty (-1)")


def check_per_channel_use(raw: RawModel) -> None:
    """Per-channel scales belong to constant weights read as weights; kernels abort on any other use."""
    for graph in raw.subgraphs:
        for tensor in graph.tensors:
            if tensor.scale is not None and len(tensor.scale) > 1 and not tensor.constant:
                fail("per_channel_use", raw, f"{where(graph)}{tensor_label(graph, tensor.index)} is "
                      "not constant but is quantized per channel: only weights can be")
        for op in graph.operators:
            rule = rule_for(op.opcode)
            if rule is None or rule.per_channel_inputs is None:
                continue
            for position, t in enumerate(op.inputs):
                scale = graph.tensors[t].scale if t != -1 else None
                if scale is not None and len(scale) > 1 and position not in rule.per_channel_inputs:
                    fail("per_channel_use", raw, f"{op_label(graph, op)} reads per-channel quantized "
                          f"{tensor_label(graph, t)} as input {position}, where it needs one scale")


# ----------------------------------------------------------------------------- operator contracts
# Each operator with a record (operators.py) is held to it: a file that breaks
# what its kernels assume without checking crashes them or reads out of bounds.


def _contracts(graph: RawSubgraph):
    """(operator, its record) for the operators whose record has an arity, in order."""
    for op in graph.operators:
        rule = rule_for(op.opcode)
        if rule is not None and rule.arity is not None:
            yield op, rule


def check_operator_arity(raw: RawModel) -> None:
    for graph in raw.subgraphs:
        for op, rule in _contracts(graph):
            fewest, most = rule.arity
            if len(op.inputs) < fewest or (most is not None and len(op.inputs) > most):
                wanted = f"{fewest}" if fewest == most else f"{fewest} to {most or 'any number of'}"
                fail("operator_arity", raw, f"{op_label(graph, op)} has {len(op.inputs)} inputs, "
                      f"but takes {wanted}")
            if len(op.outputs) != 1:
                fail("operator_arity", raw, f"{op_label(graph, op)} has {len(op.outputs)} outputs, "
                      "but has exactly 1")


def check_operator_types(raw: RawModel) -> None:
    """Data inputs and output share one type; quantized types carry scales; biases are numbers."""
    for graph in raw.subgraphs:
        for op, rule in _contracts(graph):
            label = op_label(graph, op)
            out = graph.tensors[op.outputs[0]]
            data = [graph.tensors[t] for t in rule.data(op.inputs)]
            if rule.same_type:
                for tensor in data:
                    if tensor.dtype != out.dtype and (tensor.dtype, out.dtype) not in rule.type_changes:
                        fail("operator_types", raw, f"{label} reads {tensor_label(graph, tensor.index)} "
                              f"of {tensor.dtype} but writes {out.dtype}")
            checked = (data if "data" in rule.scales_on else []) + ([out] if "output" in rule.scales_on else [])
            if rule.weighted:
                checked.append(graph.tensors[op.inputs[1]])
                if len(op.inputs) > 2 and op.inputs[2] != -1:
                    bias = graph.tensors[op.inputs[2]]
                    if bias.dtype not in ("int32", "int64", "float32"):
                        fail("operator_types", raw, f"{label} has bias {tensor_label(graph, bias.index)} "
                              f"of {bias.dtype}: it must be int32, int64 or float32")
            if rule.index_input and len(op.inputs) > 1:
                index = graph.tensors[op.inputs[1]]
                if index.dtype not in ("int32", "int64"):
                    fail("operator_types", raw, f"{label} reads its {rule.index_input} from "
                          f"{tensor_label(graph, index.index)} of {index.dtype}: it must be int32 or int64")
            for tensor in checked:
                if tensor.dtype in QUANTIZED_DTYPES and (tensor.scale is None or not len(tensor.scale)):
                    fail("operator_types", raw, f"{label} uses {tensor_label(graph, tensor.index)} of "
                          f"{tensor.dtype} without quantization parameters")


def check_operator_shapes(raw: RawModel) -> None:
    """Each operator's output shape is what its inputs and options give; weights fit the input."""
    for graph in raw.subgraphs:
        for op, rule in _contracts(graph):
            if rule.output_shape is None:
                continue
            label = op_label(graph, op)
            involved = rule.data(op.inputs) + list(op.outputs)
            for t in involved:
                if 0 in graph.tensors[t].shape:
                    fail("operator_shapes", raw, f"{label} uses empty {tensor_label(graph, t)} of "
                          f"shape {graph.tensors[t].shape}")
            if rule.weighted:
                involved.append(op.inputs[1])
                _check_bias(raw, label, graph, op, rule.weights_channel_axis)
            run_time_dims = {
                i for t in involved for i, d in enumerate(graph.tensors[t].signature or ()) if d < 0
            }
            # A run-time batch alone leaves every other dimension exact, except where the kernel
            # folds the batch into its rows (FULLY_CONNECTED).
            static = not run_time_dims or (run_time_dims == {0} and not rule.folds_batch)
            expected = rule.output_shape(raw, label, graph, op, static)
            actual = graph.tensors[op.outputs[0]].shape
            skip = 1 if run_time_dims else 0  # compare the batch only when it is known
            if static and expected is not None and (
                len(expected) != len(actual) or tuple(expected)[skip:] != actual[skip:]
            ):
                fail("operator_shapes", raw, f"{label} output {tensor_label(graph, op.outputs[0])} "
                      f"has shape {actual}, but its inputs give {tuple(expected)}")


def _check_bias(raw, label, graph, op, channel_axis: int) -> None:
    if len(op.inputs) < 3 or op.inputs[2] == -1:
        return
    bias = graph.tensors[op.inputs[2]]
    weights = graph.tensors[op.inputs[1]].shape
    if not weights:
        return  # the rule reports the weights' rank
    channels = weights[channel_axis]
    if math.prod(bias.shape) != channels:
        fail("operator_shapes", raw, f"{label} has bias {tensor_label(graph, bias.index)} "
              f"of shape {bias.shape} for {channels} output channels")


def check_subgraph_calls(raw: RawModel) -> None:
    """IF/WHILE/CALL_ONCE name existing subgraphs, match their inputs and outputs, and never recurse."""
    count = len(raw.subgraphs)
    calls: dict[int, set[int]] = {g.index: set() for g in raw.subgraphs}
    for graph in raw.subgraphs:
        for op in graph.operators:
            rule = rule_for(op.opcode)
            if rule is None or not rule.subgraphs:
                continue
            for option in rule.subgraphs:
                target = op.options[option]
                if not 0 <= target < count:
                    fail("subgraph_calls", raw, f"{op_label(graph, op)} has {option} {target}, but the "
                          f"model has {count} subgraphs")
                calls[graph.index].add(target)
            _check_call_arity(raw, graph, op, rule.subgraphs)
    cycle = _find_cycle(calls)
    if cycle is not None:
        path = " -> ".join(str(g) for g in cycle)
        fail("subgraph_calls", raw, f"subgraphs call each other in a loop ({path}): interpreters "
              "would recurse without end")


def _check_call_arity(raw: RawModel, graph: RawSubgraph, op: RawOperator, options: tuple[str, ...]) -> None:
    """Tensor counts and types handed to a called subgraph match what it takes and gives back."""
    label = op_label(graph, op)
    sub = {name: raw.subgraphs[op.options[name]] for name in options}
    if op.opcode == "WHILE":
        cond, body = sub["cond_subgraph_index"], sub["body_subgraph_index"]
        lengths = (len(op.inputs), len(op.outputs), len(cond.inputs), len(body.inputs), len(body.outputs))
        if len(set(lengths)) != 1:
            fail("subgraph_calls", raw, f"{label} carries {len(op.inputs)} inputs and {len(op.outputs)} "
                  f"outputs, but its cond takes {len(cond.inputs)} and its body takes {len(body.inputs)} "
                  f"and gives {len(body.outputs)}")
        _check_call_types(raw, label, graph, op.inputs, cond, cond.inputs)
        _check_call_types(raw, label, graph, op.inputs, body, body.inputs)
        _check_call_types(raw, label, graph, op.outputs, body, body.outputs)
    elif op.opcode == "IF":
        for name, branch in sub.items():
            if len(branch.inputs) != len(op.inputs) - 1 or len(branch.outputs) != len(op.outputs):
                fail("subgraph_calls", raw, f"{label} passes {len(op.inputs) - 1} inputs and takes "
                      f"{len(op.outputs)} outputs, but subgraph {branch.index} ({name}) has "
                      f"{len(branch.inputs)} and {len(branch.outputs)}")
            _check_call_types(raw, label, graph, op.inputs[1:], branch, branch.inputs)
            _check_call_types(raw, label, graph, op.outputs, branch, branch.outputs)
        if op.inputs and graph.tensors[op.inputs[0]].dtype != "bool":
            fail("subgraph_calls", raw, f"{label} branches on {tensor_label(graph, op.inputs[0])} of "
                  f"{graph.tensors[op.inputs[0]].dtype}: it must be bool")


def _check_call_types(raw, label, graph, ours, callee: RawSubgraph, theirs) -> None:
    for a, b in zip(ours, theirs):
        if graph.tensors[a].dtype != callee.tensors[b].dtype:
            fail("subgraph_calls", raw, f"{label} hands {tensor_label(graph, a)} of "
                  f"{graph.tensors[a].dtype} to subgraph {callee.index}, whose "
                  f"{tensor_label(callee, b)} is {callee.tensors[b].dtype}")


def _find_cycle(calls: dict[int, set[int]]) -> list[int] | None:
    """A loop in the call graph as a list of subgraphs, or None; iterative, so depth is no concern."""
    state: dict[int, int] = {}  # 1: on the current path, 2: done
    for start in calls:
        if state.get(start):
            continue
        path, stack = [start], [iter(sorted(calls[start]))]
        state[start] = 1
        while stack:
            child = next(stack[-1], None)
            if child is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(child) == 1:
                return path[path.index(child):] + [child]
            elif not state.get(child):
                state[child] = 1
                path.append(child)
                stack.append(iter(sorted(calls[child])))
    return None


def check_dataflow(raw: RawModel) -> None:
    """Each tensor an operator reads exists by then; no operator overwrites constants, inputs or results."""
    for graph in raw.subgraphs:
        graph_inputs = set(graph.inputs)
        for t in graph.inputs:
            if graph.tensors[t].constant:
                fail("dataflow", raw, f"{where(graph)}graph input {tensor_label(graph, t)} has "
                      "constant data: an input is written by the caller")
        available = graph_inputs | {t.index for t in graph.tensors if t.constant or t.is_variable}
        written_by: dict[int, int] = {}
        for op in graph.operators:
            for t in op.inputs:
                if t != -1 and t not in available:
                    fail("dataflow", raw, f"{op_label(graph, op)} reads {tensor_label(graph, t)} "
                          "before any operator writes it")
            for t in op.outputs:
                tensor = graph.tensors[t]
                if tensor.constant:
                    fail("dataflow", raw, f"{op_label(graph, op)} writes constant "
                          f"{tensor_label(graph, t)}")
                if t in graph_inputs:
                    fail("dataflow", raw, f"{op_label(graph, op)} writes graph input "
                          f"{tensor_label(graph, t)}")
                if t in written_by and not tensor.is_variable:
                    fail("dataflow", raw, f"{op_label(graph, op)} writes {tensor_label(graph, t)}, "
                          f"which operator {written_by[t]} already wrote")
                written_by[t] = op.index
                available.add(t)
        for t in graph.outputs:
            if t not in available:
                fail("dataflow", raw, f"{where(graph)}graph output {tensor_label(graph, t)} is never "
                      "written")


def check_reshape(raw: RawModel) -> None:
    """A RESHAPE keeps its element count, and a -1 in its new shape must be resolvable."""
    for graph in raw.subgraphs:
        for op in graph.operators:
            if op.opcode != "RESHAPE":
                continue
            label = op_label(graph, op)
            if not op.inputs or op.inputs[0] == -1 or len(op.outputs) != 1:
                fail("reshape", raw, f"{label} needs one input tensor and one output tensor")
            if graph.tensors[op.inputs[0]].dynamic:
                continue  # the input's element count is only known at run time
            count = math.prod(graph.tensors[op.inputs[0]].shape)
            new_shape = _reshape_target(raw, graph, op)
            if new_shape is not None:
                resolved = _resolve_new_shape(raw, label, new_shape, count)
                if math.prod(resolved) != count:
                    fail("reshape", raw, f"{label} reshapes {count} elements into new shape "
                          f"{tuple(new_shape)} of {math.prod(resolved)} elements")
            output = graph.tensors[op.outputs[0]]
            if not output.dynamic and math.prod(output.shape) != count:
                fail("reshape", raw, f"{label} reshapes {count} elements into output "
                      f"{tensor_label(graph, output.index)} of shape {output.shape}")


def _reshape_target(raw: RawModel, graph: RawSubgraph, op: RawOperator) -> list[int] | None:
    """The requested shape: the constant shape tensor if any, else the options; None if dynamic."""
    if len(op.inputs) > 1 and op.inputs[1] != -1:
        shape_tensor = graph.tensors[op.inputs[1]]
        span = raw.buffers[shape_tensor.buffer].span()
        if (span is None or shape_tensor.sparse or shape_tensor.dtype not in ("int32", "int64")
                or len(shape_tensor.shape) != 1):
            return None  # computed at run time: only the output shape can be checked
        values = np.frombuffer(raw.data, S.DTYPES[shape_tensor.dtype.upper()][1],
                               count=shape_tensor.shape[0], offset=span[0])
        return [int(v) for v in values]
    return op.options.get("new_shape")


def _resolve_new_shape(raw: RawModel, label: str, new_shape: list[int], count: int) -> list[int]:
    unknown = [i for i, d in enumerate(new_shape) if d == -1]
    if len(unknown) > 1 or any(d < -1 for d in new_shape):
        fail("reshape", raw, f"{label} has new shape {tuple(new_shape)}: at most one -1 and no other "
              "negative dimension")
    if not unknown:
        return new_shape
    known = math.prod(d for d in new_shape if d != -1)
    if known == 0 or count % known:
        fail("reshape", raw, f"{label} cannot resolve the -1 in new shape {tuple(new_shape)} for "
              f"{count} input elements")
    resolved = list(new_shape)
    resolved[unknown[0]] = count // known
    return resolved


# The checks, in the order they run: later checks rely on what earlier ones proved.
CHECKS = (
    check_file_size,
    check_root_offset,
    check_file_identifier,
    parse_structure,
    check_schema_version,
    check_subgraphs,
    check_operator_codes,
    check_external_buffers,
    check_buffer_indices,
    check_tensor_indices,
    check_tensor_types,
    check_shapes,
    check_constant_sizes,
    check_quantization,
    check_options,
    check_required_inputs,
    check_subgraph_calls,
    check_per_channel_use,
    check_dataflow,
    check_reshape,
    check_operator_arity,
    check_operator_types,
    check_operator_shapes,
)


# ----------------------------------------------------------------------------- building the model


def build_model(raw: RawModel) -> Model:
    graph = raw.subgraphs[0]
    tensors = tuple(_build_tensor(raw, t) for t in graph.tensors)
    operators = tuple(
        Operator(index=op.index, opcode=op.opcode, version=op.version, inputs=tuple(op.inputs),
                 outputs=tuple(op.outputs), options=op.options)
        for op in graph.operators
    )
    return Model(
        version=raw.version, description=raw.description, tensors=tensors, operators=operators,
        inputs=tuple(graph.inputs), outputs=tuple(graph.outputs), subgraph_count=len(raw.subgraphs),
    )


def _build_tensor(raw: RawModel, t: RawTensor) -> Tensor:
    quantization = None
    if t.scale is not None and len(t.scale):
        quantization = Quantization(
            scale=t.scale.astype(np.float32, copy=False),
            zero_point=t.zero_point.astype(np.int64, copy=False),
            axis=t.axis if len(t.scale) > 1 else 0,
        )
    return Tensor(
        index=t.index, name=t.name, shape=tuple(t.shape), dtype=t.dtype,
        data=_constant_data(raw, t), quantization=quantization, is_variable=t.is_variable,
        shape_signature=None if t.signature is None else tuple(t.signature),
    )


def _constant_data(raw: RawModel, t: RawTensor) -> np.ndarray | None:
    span = raw.buffers[t.buffer].span()
    if span is None:
        return None
    start, length = span
    storage = S.DTYPES[t.dtype.upper()][1]
    if storage is None or t.sparse:  # raw bytes: packed int4, strings, sparse values
        return np.frombuffer(raw.data, np.uint8, count=length, offset=start)
    array = np.frombuffer(raw.data, storage, count=math.prod(t.shape), offset=start)
    return array.reshape(t.shape)
