"""The bounds-checked walk of a .tflite flatbuffer into raw records, and how messages name them.

The raw records hold what the file says, unchecked beyond the offsets flatbuf
verifies; the checks in validate fill in the fields they prove (opcode names,
dtypes, decoded options) and `validate.build_model` turns them into the public
records of `model`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgekit.tflite import schema as S
from edgekit.tflite.flatbuf import Buffer, Table
from edgekit.tflite.model import ModelCheckError


@dataclass
class RawBuffer:
    inline: tuple[int, int] | None  # (start, length) of the data vector inside the flatbuffer
    offset: int  # Buffer.offset / Buffer.size: data stored after the flatbuffer (large models)
    size: int

    def span(self) -> tuple[int, int] | None:
        """(start, length) of the data in the file, or None when the buffer is empty."""
        if self.inline is not None and self.inline[1] > 0:
            return self.inline
        if self.offset > 1 and self.size > 0:
            return (self.offset, self.size)
        return None


@dataclass
class RawTensor:
    index: int
    name: str
    shape: tuple[int, ...]
    signature: tuple[int, ...] | None
    type_code: int
    buffer: int
    scale: np.ndarray | None
    zero_point: np.ndarray | None
    axis: int
    is_variable: bool
    sparse: bool
    dtype: str = ""  # set by check_tensor_types
    constant: bool = False  # set by check_buffer_indices

    @property
    def dynamic(self) -> bool:
        """Some dimension is only known at run time: `shape` holds a placeholder (usually 1) there."""
        return self.signature is not None and any(d < 0 for d in self.signature)


@dataclass
class RawOperator:
    index: int
    opcode_index: int
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    intermediates: tuple[int, ...]
    options_type: int
    options_table: Table | None
    opcode: str = ""  # set by check_operator_codes
    version: int = 1
    options: dict = field(default_factory=dict)  # set by check_options


@dataclass
class RawSubgraph:
    index: int
    name: str
    tensors: list[RawTensor]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    operators: list[RawOperator]


@dataclass
class RawOpcode:
    code: int
    custom_code: str | None
    version: int


@dataclass
class RawModel:
    name: str
    data: bytes
    version: int = 0
    description: str = ""
    opcodes: list[RawOpcode] = field(default_factory=list)
    subgraphs: list[RawSubgraph] = field(default_factory=list)
    buffers: list[RawBuffer] = field(default_factory=list)


def fail(check: str, raw: RawModel, message: str):
    raise ModelCheckError(check, f"{raw.name}: {message}")


def where(graph: RawSubgraph) -> str:
    """'' for subgraph 0 (what users think of as the model), 'subgraph N ' otherwise."""
    return f"subgraph {graph.index} " if graph.index else ""


def tensor_label(graph: RawSubgraph, t: int) -> str:
    tensor = graph.tensors[t]
    return f"tensor {t} ({printable(tensor.name)})" if tensor.name else f"tensor {t}"


def printable(text: str, limit: int = 80) -> str:
    """A name from the file, safe for a one-line message: no control characters, bounded length."""
    clean = "".join(c if c.isprintable() else "?" for c in text[: limit + 1])
    return clean if len(clean) <= limit else clean[:limit] + "..."


def op_label(graph: RawSubgraph, op: RawOperator) -> str:
    return f"{where(graph)}operator {op.index} ({op.opcode or 'opcode ' + str(op.opcode_index)})"


# ----------------------------------------------------------------------------- the walk


def parse_structure(raw: RawModel) -> None:
    """Walk the flatbuffer into raw records; every offset is checked by flatbuf."""
    buf = Buffer(raw.data)
    root = buf.root()
    raw.version = root.scalar(S.MODEL_VERSION, "I", 0, "version")
    raw.description = root.string(S.MODEL_DESCRIPTION, "description") or ""
    opcodes = root.tables(S.MODEL_OPERATOR_CODES, "operator_codes", "operator code") or []
    raw.opcodes = [_parse_opcode(t) for t in opcodes]
    raw.buffers = [_parse_buffer(t) for t in root.tables(S.MODEL_BUFFERS, "buffers", "buffer") or []]
    subgraphs = root.tables(S.MODEL_SUBGRAPHS, "subgraphs", "subgraph") or []
    raw.subgraphs = [_parse_subgraph(i, t) for i, t in enumerate(subgraphs)]


def _parse_opcode(t: Table) -> RawOpcode:
    deprecated = t.scalar(S.OPCODE_DEPRECATED_BUILTIN_CODE, "b", 0, "deprecated_builtin_code")
    builtin = t.scalar(S.OPCODE_BUILTIN_CODE, "i", 0, "builtin_code")
    # Old files only set the int8 field; newer ones put 127 there for codes >= 127.
    return RawOpcode(
        code=max(deprecated, builtin),
        custom_code=t.string(S.OPCODE_CUSTOM_CODE, "custom_code"),
        version=t.scalar(S.OPCODE_VERSION, "i", 1, "version"),
    )


def _parse_buffer(t: Table) -> RawBuffer:
    return RawBuffer(
        inline=t.byte_span(S.BUFFER_DATA, "data"),
        offset=t.scalar(S.BUFFER_OFFSET, "Q", 0, "offset"),
        size=t.scalar(S.BUFFER_SIZE, "Q", 0, "size"),
    )


def _parse_subgraph(index: int, t: Table) -> RawSubgraph:
    tensors = t.tables(S.SUBGRAPH_TENSORS, "tensors", "tensor") or []
    operators = t.tables(S.SUBGRAPH_OPERATORS, "operators", "operator") or []
    return RawSubgraph(
        index=index,
        name=t.string(S.SUBGRAPH_NAME, "name") or "",
        tensors=[_parse_tensor(i, x) for i, x in enumerate(tensors)],
        inputs=t.scalars(S.SUBGRAPH_INPUTS, "i", "inputs") or (),
        outputs=t.scalars(S.SUBGRAPH_OUTPUTS, "i", "outputs") or (),
        operators=[_parse_operator(i, x) for i, x in enumerate(operators)],
    )


def _parse_tensor(index: int, t: Table) -> RawTensor:
    scale = zero_point = None
    axis = 0
    quant = t.table(S.TENSOR_QUANTIZATION, "quantization")
    if quant is not None:
        scale = quant.array(S.QUANT_SCALE, "<f4", "scale")
        zero_point = quant.array(S.QUANT_ZERO_POINT, "<i8", "zero_point")
        axis = quant.scalar(S.QUANT_QUANTIZED_DIMENSION, "i", 0, "quantized_dimension")
    return RawTensor(
        index=index,
        name=t.string(S.TENSOR_NAME, "name") or "",
        shape=t.scalars(S.TENSOR_SHAPE, "i", "shape") or (),
        signature=t.scalars(S.TENSOR_SHAPE_SIGNATURE, "i", "shape_signature"),
        type_code=t.scalar(S.TENSOR_TYPE, "b", 0, "type"),
        buffer=t.scalar(S.TENSOR_BUFFER, "I", 0, "buffer"),
        scale=scale,
        zero_point=zero_point,
        axis=axis,
        is_variable=bool(t.scalar(S.TENSOR_IS_VARIABLE, "B", 0, "is_variable")),
        sparse=t.has(S.TENSOR_SPARSITY),
    )


def _parse_operator(index: int, t: Table) -> RawOperator:
    return RawOperator(
        index=index,
        opcode_index=t.scalar(S.OPERATOR_OPCODE_INDEX, "I", 0, "opcode_index"),
        inputs=t.scalars(S.OPERATOR_INPUTS, "i", "inputs") or (),
        outputs=t.scalars(S.OPERATOR_OUTPUTS, "i", "outputs") or (),
        intermediates=t.scalars(S.OPERATOR_INTERMEDIATES, "i", "intermediates") or (),
        options_type=t.scalar(S.OPERATOR_BUILTIN_OPTIONS_TYPE, "B", 0, "builtin_options_type"),
        options_table=t.table(S.OPERATOR_BUILTIN_OPTIONS, "builtin_options"),
    )
