"""The .tflite reader: valid models read right, each class of bad file fails its own check.

Crafted files are made by unpacking a valid tiny model with TFLite's own
generated schema code (an independent writer), changing one thing, and packing
it again; a few are written byte by byte.
"""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest

import tinymodels
from edgekit.errors import InvalidModelError
from edgekit.tflite.limits import KernelLimitError, check_kernel_limits
from edgekit.tflite.model import ModelCheckError
from edgekit.tflite.reader import read_model, validate_file
from edgekit.tflite.validate import CHECKS

fb = pytest.importorskip("ai_edge_litert.schema_py_generated", reason="ai-edge-litert not installed")
flatbuffers = pytest.importorskip("flatbuffers", reason="flatbuffers not installed")


@pytest.fixture(scope="module")
def int8_bytes() -> bytes:
    pytest.importorskip("tf_keras", reason="tf-keras not installed: cannot build test models")
    return tinymodels.tiny_int8_cnn_bytes()


@pytest.fixture(scope="module")
def float_bytes() -> bytes:
    pytest.importorskip("tf_keras", reason="tf-keras not installed: cannot build test models")
    return tinymodels.tiny_float_cnn_bytes()


def unpack(data: bytes):
    return fb.ModelT.InitFromPackedBuf(bytearray(data), 0)


def pack(model, identifier: bytes | None = b"TFL3") -> bytes:
    builder = flatbuffers.Builder(4096)
    builder.Finish(model.Pack(builder), file_identifier=identifier)
    return bytes(builder.Output())


def mutated(data: bytes, change) -> bytes:
    model = unpack(data)
    change(model)
    return pack(model)


def rejects(data: bytes, check: str, *fragments: str) -> ModelCheckError:
    with pytest.raises(ModelCheckError) as info:
        read_model(data, name="bad.tflite")
    err = info.value
    assert err.check == check, str(err)
    message = str(err)
    assert message.startswith("bad.tflite: ") and "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    return err


def runs_on_litert(path) -> None:
    """LiteRT, as edgekit's tflite backend runs it, loads the model and computes finite outputs."""
    from edgekit.backends.tflite import LiteRTRunner

    runner = LiteRTRunner(path)
    feed = {s.name: np.zeros(s.shape, s.dtype) for s in runner.inputs}
    outputs = runner.infer(feed)
    assert outputs and all(np.isfinite(v.astype(np.float64)).all() for v in outputs.values())


def op_index(model, name: str) -> int:
    codes = {i: max(c.builtinCode, c.deprecatedBuiltinCode) for i, c in enumerate(model.operatorCodes)}
    ops = model.subgraphs[0].operators
    return next(i for i, op in enumerate(ops) if codes[op.opcodeIndex] == getattr(fb.BuiltinOperator, name))


def constant_tensor(model, ndim: int | None = None) -> int:
    """Index of a constant tensor (optionally of a given rank) in subgraph 0."""
    for i, t in enumerate(model.subgraphs[0].tensors):
        data = model.buffers[t.buffer].data
        if data is not None and len(data) and (ndim is None or len(t.shape) == ndim):
            return i
    raise AssertionError("no constant tensor")


# ----------------------------------------------------------------------------- valid models


def test_tiny_int8_model_reads_as_built(int8_bytes):
    model = read_model(int8_bytes)
    assert model.version == 3 and model.subgraph_count == 1
    assert model.ops_used() == [
        "CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"
    ]
    (inp,), (out,) = model.inputs, model.outputs
    assert model.tensor(inp).shape == (1, 8, 8, 1) and model.tensor(inp).dtype == "int8"
    assert model.tensor(out).shape == (1, 4) and model.tensor(out).dtype == "int8"
    conv = model.operators[0]
    assert conv.opcode == "CONV_2D"
    assert conv.options == {
        "padding": "SAME", "stride_w": 1, "stride_h": 1, "fused_activation_function": "RELU",
        "dilation_w_factor": 1, "dilation_h_factor": 1, "quantized_bias_type": "FLOAT32",
    }
    weights = model.tensor(conv.inputs[1])
    assert weights.shape == (4, 3, 3, 1) and weights.dtype == "int8"
    assert weights.data.shape == (4, 3, 3, 1) and not weights.data.flags.writeable
    assert weights.quantization.scale.shape == (4,) and weights.quantization.axis == 0
    dw = model.operators[1]
    assert dw.options["depth_multiplier"] == 1 and dw.options["fused_activation_function"] == "RELU6"
    assert model.tensor(dw.inputs[1]).quantization.axis == 3
    pool = model.operators[2].options
    assert (pool["filter_width"], pool["filter_height"], pool["stride_w"], pool["padding"]) == (2, 2, 2, "VALID")
    assert model.operators[5].options == {"beta": 1.0}
    activations = [t for t in model.tensors if t.data is None]
    assert all(t.quantization is not None and t.quantization.scale.shape == (1,) for t in activations)


def test_float_weights_match_the_keras_model(float_bytes):
    """The constant data the reader returns is the model's real weights."""
    keras_model = tinymodels.tiny_cnn()
    dense_kernel = keras_model.get_layer("dense").get_weights()[0]  # (64, 4)
    model = read_model(float_bytes)
    fc = next(op for op in model.operators if op.opcode == "FULLY_CONNECTED")
    weights = model.tensor(fc.inputs[1])
    assert weights.dtype == "float32" and weights.quantization is None
    np.testing.assert_array_equal(weights.data, dense_kernel.T)


def test_dynamic_batch_model_reads(int8_bytes):
    """Run-time dimensions: the file's shapes are placeholders there, so they are not held to shape rules."""
    keras = pytest.importorskip("tf_keras", reason="tf-keras not installed")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6, 6, 2))  # batch size unknown until run time
    x = keras.layers.Conv2D(3, 3, activation="relu")(inputs)
    x = keras.layers.Reshape((-1,))(x)
    outputs = keras.layers.Softmax()(keras.layers.Dense(4)(x))
    data = tinymodels.to_tflite(keras.Model(inputs, outputs))
    model = read_model(data)
    assert "RESHAPE" in model.ops_used() and "FULLY_CONNECTED" in model.ops_used()
    signature = model.tensor(model.inputs[0]).shape_signature
    assert signature == (-1, 6, 6, 2) and model.tensor(model.inputs[0]).shape == (1, 6, 6, 2)


def test_repacked_model_still_reads(int8_bytes):
    """Sanity of the mutation helpers: an unchanged round trip is accepted."""
    assert read_model(mutated(int8_bytes, lambda m: None)).ops_used() == read_model(int8_bytes).ops_used()


def test_validate_file_reads_paths(tmp_path, int8_bytes):
    path = tmp_path / "tiny.tflite"
    path.write_bytes(int8_bytes)
    assert len(validate_file(path).operators) == 6
    assert len(read_model(str(path)).operators) == 6
    with pytest.raises(InvalidModelError, match="not found"):
        validate_file(tmp_path / "missing.tflite")
    with pytest.raises(InvalidModelError, match="folder"):
        validate_file(tmp_path)
    path.write_bytes(b"\x18\x00\x00\x00TFL3")
    with pytest.raises(ModelCheckError, match=r"^tiny\.tflite: "):
        validate_file(path)


def test_external_buffer_data_reads_like_inline_data(int8_bytes):
    """Buffer.offset/size (data after the flatbuffer, large-model style) give the same tensor."""
    model = unpack(int8_bytes)
    t = constant_tensor(model, ndim=4)
    payload = bytes(model.buffers[model.subgraphs[0].tensors[t].buffer].data)
    buffer = model.buffers[model.subgraphs[0].tensors[t].buffer]
    buffer.data = None
    buffer.offset, buffer.size = 1, len(payload)  # placeholder offset: patched below
    head = pack(model)
    start = (len(head) + 15) // 16 * 16
    buffer.offset = start
    head = pack(model)  # same length: only the offset's value changed
    assert (len(head) + 15) // 16 * 16 == start
    data = head + b"\0" * (start - len(head)) + payload
    expected = read_model(int8_bytes).tensor(t).data
    np.testing.assert_array_equal(read_model(data).tensor(t).data, expected)


def test_opcode_is_max_of_deprecated_and_new_code(int8_bytes):
    def old_style(m):  # files from before builtin_code existed only set the int8 field
        for code in m.operatorCodes:
            code.builtinCode = 0

    assert read_model(mutated(int8_bytes, old_style)).ops_used()[0] == "CONV_2D"

    def high_code(m):  # codes >= 127 live in builtin_code only
        conv = m.subgraphs[0].operators[0].opcodeIndex
        m.operatorCodes[conv].deprecatedBuiltinCode = 127
        m.operatorCodes[conv].builtinCode = fb.BuiltinOperator.GELU

    assert read_model(mutated(int8_bytes, high_code)).operators[0].opcode == "GELU"


def test_custom_operator_is_named_by_its_custom_code(int8_bytes):
    def custom(m):
        code = m.operatorCodes[m.subgraphs[0].operators[5].opcodeIndex]
        code.deprecatedBuiltinCode = code.builtinCode = fb.BuiltinOperator.CUSTOM
        code.customCode = "MyOp"
        m.subgraphs[0].operators[5].builtinOptionsType = 0
        m.subgraphs[0].operators[5].builtinOptions = None

    assert read_model(mutated(int8_bytes, custom)).operators[5].opcode == "CUSTOM:MyOp"


def test_omitted_options_take_schema_defaults(int8_bytes):
    def strip(op_number):
        def change(m):
            op = m.subgraphs[0].operators[op_number]
            op.builtinOptionsType, op.builtinOptions = 0, None
        return change

    fc = read_model(mutated(int8_bytes, strip(4))).operators[4]
    assert fc.options == {
        "fused_activation_function": "NONE", "weights_format": "DEFAULT", "keep_num_dims": False,
        "asymmetric_quantize_inputs": False, "quantized_bias_type": "FLOAT32",
    }
    # A convolution's schema defaults (stride 0) would make kernels divide by zero.
    rejects(mutated(int8_bytes, strip(0)), "operator_shapes", "operator 0 (CONV_2D) has stride_w 0")


def test_second_subgraph_is_counted_and_checked(int8_bytes):
    def two(m):
        m.subgraphs.append(unpack(int8_bytes).subgraphs[0])

    assert read_model(mutated(int8_bytes, two)).subgraph_count == 2

    def bad_second(m):
        second = unpack(int8_bytes).subgraphs[0]
        second.operators[0].inputs[0] = 77
        m.subgraphs.append(second)

    rejects(mutated(int8_bytes, bad_second), "tensor_indices", "subgraph 1 operator 0 (CONV_2D) reads tensor 77")


# ----------------------------------------------------------------------------- header and structure


def test_root_offset_past_the_end():  # tensorflow issue 115308
    rejects(b"\x18\x00\x00\x00TFL3", "root_offset", "past the end")


def test_short_file():
    rejects(b"TFL3", "file_size", "4 bytes")
    rejects(b"", "file_size")


def test_wrong_or_missing_identifier(int8_bytes):
    rejects(int8_bytes[:4] + b"ONNX" + int8_bytes[8:], "file_identifier", "b'ONNX'")
    rejects(pack(unpack(int8_bytes), identifier=None), "file_identifier")


@pytest.mark.parametrize("keep", [0.25, 0.5, 0.9, 0.99])
def test_truncated_file(int8_bytes, keep):
    with pytest.raises(ModelCheckError) as info:
        read_model(int8_bytes[: int(len(int8_bytes) * keep)])
    assert info.value.check in ("structure", "external_buffers"), str(info.value)
    assert "outside the file" in str(info.value) or "past the end" in str(info.value)


def _offset_pointing_to(data: bytes, target: int) -> int:
    """Position of the uoffset field whose value leads to `target`."""
    hits = [p for p in range(0, len(data) - 3, 4) if p + struct.unpack_from("<I", data, p)[0] == target]
    assert len(hits) == 1, hits
    return hits[0]


def test_huge_vector_length_is_refused_before_allocating(int8_bytes):
    marker = b"MARKER-DESCRIPTION"
    data = bytearray(mutated(int8_bytes, lambda m: setattr(m, "description", marker.decode())))
    length_at = data.index(marker) - 4
    struct.pack_into("<I", data, length_at, 0xFFFFFFF0)
    rejects(bytes(data), "structure", "description", "outside the file")


def test_misaligned_vector(int8_bytes):
    sentinel = 0x1234567

    def mark(m):
        m.subgraphs[0].tensors[0].shapeSignature = np.array([sentinel, 8, 8, 1], dtype=np.int32)

    data = bytearray(mutated(int8_bytes, mark))
    vector = data.index(struct.pack("<i", sentinel)) - 4
    field = _offset_pointing_to(bytes(data), vector)
    struct.pack_into("<I", data, field, struct.unpack_from("<I", data, field)[0] + 2)
    rejects(bytes(data), "structure", "shape_signature", "not aligned")


def _shared_shape_model(tensors: int, dims: int) -> bytes:
    """A model whose tensors all point at one shape vector: legal bytes, quadratic work if trusted."""
    b = flatbuffers.Builder(0)
    fb.TensorStartShapeVector(b, dims)
    for _ in range(dims):
        b.PrependInt32(1)
    shape = b.EndVector()
    offsets = []
    for _ in range(tensors):
        fb.TensorStart(b)
        fb.TensorAddShape(b, shape)
        offsets.append(fb.TensorEnd(b))
    fb.SubGraphStartTensorsVector(b, tensors)
    for t in reversed(offsets):
        b.PrependUOffsetTRelative(t)
    tensor_vector = b.EndVector()
    io = []
    for _ in range(2):  # tensor 0 is both the graph input and its output
        fb.SubGraphStartInputsVector(b, 1)
        b.PrependInt32(0)
        io.append(b.EndVector())
    fb.SubGraphStart(b)
    fb.SubGraphAddTensors(b, tensor_vector)
    fb.SubGraphAddInputs(b, io[0])
    fb.SubGraphAddOutputs(b, io[1])
    subgraph = fb.SubGraphEnd(b)
    fb.ModelStartSubgraphsVector(b, 1)
    b.PrependUOffsetTRelative(subgraph)
    subgraphs = b.EndVector()
    fb.BufferStart(b)
    empty = fb.BufferEnd(b)
    fb.ModelStartBuffersVector(b, 1)
    b.PrependUOffsetTRelative(empty)
    buffers = b.EndVector()
    fb.ModelStart(b)
    fb.ModelAddVersion(b, 3)
    fb.ModelAddSubgraphs(b, subgraphs)
    fb.ModelAddBuffers(b, buffers)
    b.Finish(fb.ModelEnd(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def test_vectors_shared_by_many_tables_are_refused():
    """20000 tensors x one 20000-dim shape would be 4e8 reads from a 320 kB file."""
    assert len(read_model(_shared_shape_model(10, 4)).tensors) == 10
    rejects(_shared_shape_model(20000, 20000), "structure", "overlap")


def test_schema_version(int8_bytes):
    rejects(mutated(int8_bytes, lambda m: setattr(m, "version", 2)), "schema_version", "version is 2")


def test_no_subgraph(int8_bytes):
    rejects(mutated(int8_bytes, lambda m: setattr(m, "subgraphs", [])), "subgraphs", "no subgraph")


def test_no_outputs(int8_bytes):
    def bad(m):
        m.subgraphs[0].outputs = np.array([], dtype=np.int32)

    rejects(mutated(int8_bytes, bad), "subgraphs", "no outputs")


# ----------------------------------------------------------------------------- indices


def test_buffer_index_past_the_buffer_list(int8_bytes):  # tflite-micro 3389, 3648
    def bad(m):
        m.subgraphs[0].tensors[2].buffer = len(m.buffers) + 5

    rejects(mutated(int8_bytes, bad), "buffer_indices", "tensor 2 (", "uses buffer")


@pytest.mark.parametrize("where", ["op_input", "op_output", "graph_input", "graph_output"])
def test_tensor_index_past_the_tensor_list(int8_bytes, where):  # CVE-2020-15211
    def bad(m):
        g = m.subgraphs[0]
        target = {"op_input": g.operators[3].inputs, "op_output": g.operators[3].outputs,
                  "graph_input": g.inputs, "graph_output": g.outputs}[where]
        target[0] = 57

    fragment = {"op_input": "operator 3 (RESHAPE) reads tensor 57, but the model has 14 tensors",
                "op_output": "operator 3 (RESHAPE) writes tensor 57",
                "graph_input": "graph inputs name tensor 57",
                "graph_output": "graph outputs name tensor 57"}[where]
    rejects(mutated(int8_bytes, bad), "tensor_indices", fragment)


def test_negative_tensor_index_other_than_optional(int8_bytes):
    def bad(m):
        m.subgraphs[0].operators[0].inputs[0] = -2

    rejects(mutated(int8_bytes, bad), "tensor_indices", "reads tensor -2")


def test_optional_input_minus_one_is_accepted(int8_bytes):
    def no_bias(m):
        m.subgraphs[0].operators[4].inputs[2] = -1  # FULLY_CONNECTED without bias

    assert read_model(mutated(int8_bytes, no_bias)).operators[4].inputs[2] == -1


def test_names_from_the_file_cannot_break_the_one_line_message(int8_bytes):
    def bad(m):
        t = m.subgraphs[0].tensors[2]
        t.name = "evil\nname" + "x" * 500
        t.buffer = 999

    err = rejects(mutated(int8_bytes, bad), "buffer_indices", "tensor 2 (evil?namexxx")
    assert len(str(err)) < 200


def test_opcode_index_past_the_opcode_list(int8_bytes):
    def bad(m):
        m.subgraphs[0].operators[1].opcodeIndex = 40

    rejects(mutated(int8_bytes, bad), "operator_codes", "operator 1 uses operator code 40")


def test_unknown_builtin_code(int8_bytes):
    def bad(m):
        m.operatorCodes[0].builtinCode = 5000

    rejects(mutated(int8_bytes, bad), "operator_codes", "5000")


def test_unknown_tensor_type(int8_bytes):
    def bad(m):
        m.subgraphs[0].tensors[4].type = 100

    rejects(mutated(int8_bytes, bad), "tensor_types", "tensor 4", "type 100")


# ----------------------------------------------------------------------------- buffers and data


def _external(m, offset, size):
    t = constant_tensor(m)
    buffer = m.buffers[m.subgraphs[0].tensors[t].buffer]
    buffer.data, buffer.offset, buffer.size = None, offset, size


def test_external_buffer_overflowing_64_bits(int8_bytes):  # tensorflow 116632
    data = mutated(int8_bytes, lambda m: _external(m, 2**64 - 16, 64))
    rejects(data, "external_buffers", "overflows 64 bits")


def test_external_buffer_past_the_end(int8_bytes):
    rejects(mutated(int8_bytes, lambda m: _external(m, 1 << 20, 8)), "external_buffers", "past the end")


def test_external_size_without_offset(int8_bytes):
    rejects(mutated(int8_bytes, lambda m: _external(m, 0, 8)), "external_buffers", "no offset")


def test_inline_and_external_at_once(int8_bytes):
    def both(m):
        t = constant_tensor(m)
        m.buffers[m.subgraphs[0].tensors[t].buffer].offset = 16

    rejects(mutated(int8_bytes, both), "external_buffers", "both")


def test_constant_size_disagrees_with_shape(int8_bytes):
    def short(m):
        t = constant_tensor(m, ndim=4)
        buffer = m.buffers[m.subgraphs[0].tensors[t].buffer]
        buffer.data = buffer.data[:-1]

    rejects(mutated(int8_bytes, short), "constant_sizes", "bytes of constant data", "needs 36")


# ----------------------------------------------------------------------------- shapes


def test_negative_dimension(int8_bytes):
    def bad(m):
        m.subgraphs[0].tensors[10].shape = np.array([1, -4, 4, 4], dtype=np.int32)

    rejects(mutated(int8_bytes, bad), "shapes", "tensor 10", "negative")


@pytest.mark.parametrize("shape, dtype, what", [
    ([65536, 65536], fb.TensorType.INT8, "elements"),
    ([1 << 30], fb.TensorType.FLOAT32, "bytes"),
])
def test_shape_overflowing_32_bits(int8_bytes, shape, dtype, what):
    def bad(m):
        t = m.subgraphs[0].tensors[10]
        t.shape, t.type = np.array(shape, dtype=np.int32), dtype

    rejects(mutated(int8_bytes, bad), "shapes", "tensor 10", what)


def test_reshape_element_count_mismatch_in_shape_tensor(int8_bytes):  # tensorflow 124982
    def bad(m):
        op = m.subgraphs[0].operators[op_index(m, "RESHAPE")]
        shape_tensor = m.subgraphs[0].tensors[op.inputs[1]]
        m.buffers[shape_tensor.buffer].data = np.frombuffer(struct.pack("<2i", 1, 63), np.uint8)

    rejects(mutated(int8_bytes, bad), "reshape", "RESHAPE", "64 elements into new shape (1, 63)")


@pytest.mark.parametrize("new_shape, fragment", [
    ((-1, 7), "cannot resolve the -1"),
    ((-1, -1), "at most one -1"),
    ((0, -1), "cannot resolve the -1"),
])
def test_reshape_unresolvable_minus_one(int8_bytes, new_shape, fragment):
    def bad(m):
        op = m.subgraphs[0].operators[op_index(m, "RESHAPE")]
        shape_tensor = m.subgraphs[0].tensors[op.inputs[1]]
        m.buffers[shape_tensor.buffer].data = np.frombuffer(struct.pack("<2i", *new_shape), np.uint8)

    rejects(mutated(int8_bytes, bad), "reshape", fragment)


def test_reshape_new_shape_from_options(int8_bytes):
    def with_options(new_shape):
        def change(m):
            op = m.subgraphs[0].operators[op_index(m, "RESHAPE")]
            op.inputs = op.inputs[:1]
            op.builtinOptionsType = fb.BuiltinOptions.ReshapeOptions
            op.builtinOptions = fb.ReshapeOptionsT()
            op.builtinOptions.newShape = list(new_shape)
        return change

    good = read_model(mutated(int8_bytes, with_options([-1, 64])))
    assert good.operators[3].options == {"new_shape": [-1, 64]}
    rejects(mutated(int8_bytes, with_options([2, 64])), "reshape", "new shape (2, 64) of 128 elements")


def test_reshape_output_shape_mismatch(int8_bytes):
    def bad(m):
        op = m.subgraphs[0].operators[op_index(m, "RESHAPE")]
        m.subgraphs[0].tensors[op.outputs[0]].shape = np.array([1, 65], dtype=np.int32)

    rejects(mutated(int8_bytes, bad), "reshape", "output tensor 11")


# ----------------------------------------------------------------------------- quantization


@pytest.mark.parametrize("scale", [0.0, -0.5, float("nan"), float("inf")])
def test_bad_quantization_scale(int8_bytes, scale):
    def bad(m):
        m.subgraphs[0].tensors[8].quantization.scale = np.array([scale], dtype=np.float32)

    rejects(mutated(int8_bytes, bad), "quantization", "tensor 8", "finite and > 0")


def test_zero_point_count_mismatch(int8_bytes):
    def bad(m):
        m.subgraphs[0].tensors[8].quantization.zeroPoint = np.array([0, 0], dtype=np.int64)

    rejects(mutated(int8_bytes, bad), "quantization", "1 quantization scales but 2 zero points")


def test_per_channel_axis_out_of_range(int8_bytes):
    def bad(m):
        t = constant_tensor(m, ndim=4)
        m.subgraphs[0].tensors[t].quantization.quantizedDimension = 4

    rejects(mutated(int8_bytes, bad), "quantization", "along axis 4", "rank 4")


def test_per_channel_count_disagrees_with_dimension(int8_bytes):
    def bad(m):
        t = constant_tensor(m, ndim=4)
        q = m.subgraphs[0].tensors[t].quantization
        q.quantizedDimension = 1  # dimension 1 is 3 (kernel height), not the 4 channels

    rejects(mutated(int8_bytes, bad), "quantization", "4 quantization scales", "dimension 1")


def test_zero_point_outside_dtype_range(int8_bytes):
    def bad(m):
        m.subgraphs[0].tensors[8].quantization.zeroPoint = np.array([300], dtype=np.int64)

    rejects(mutated(int8_bytes, bad), "quantization", "int8 range")


# ----------------------------------------------------------------------------- options


def test_option_enum_out_of_range(int8_bytes):
    def bad(m):
        m.subgraphs[0].operators[0].builtinOptions.padding = 5

    rejects(mutated(int8_bytes, bad), "options", "operator 0 (CONV_2D) has padding 5")


def test_options_of_the_wrong_type(int8_bytes):
    def bad(m):
        op = m.subgraphs[0].operators[0]
        op.builtinOptionsType, op.builtinOptions = fb.BuiltinOptions.SoftmaxOptions, fb.SoftmaxOptionsT()

    rejects(mutated(int8_bytes, bad), "options", "not Conv2DOptions")


def test_required_input_left_empty(int8_bytes, tmp_path):  # crashed LiteRT's RESHAPE with SIGSEGV
    def bad(m):
        m.subgraphs[0].operators[3].inputs[1] = -1

    rejects(mutated(int8_bytes, bad), "required_inputs", "operator 3 (RESHAPE) leaves its required input 1")
    # the tflite backend's runner reads every file first, an artifact read back from disk too
    from edgekit.backends.tflite import LiteRTRunner

    path = tmp_path / "model.tflite"
    path.write_bytes(mutated(int8_bytes, bad))
    with pytest.raises(ModelCheckError, match="RESHAPE"):
        LiteRTRunner(path)


def test_depthwise_conv_without_bias(int8_bytes):  # crashed TFLM with SIGSEGV; LiteRT refuses it
    def bad(m):
        m.subgraphs[0].operators[1].inputs[2] = -1

    rejects(mutated(int8_bytes, bad), "required_inputs", "operator 1 (DEPTHWISE_CONV_2D)", "input 2")


def test_dequantize_with_an_empty_input(int8_bytes):
    def bad(m):
        code = fb.OperatorCodeT()
        code.builtinCode = code.deprecatedBuiltinCode = fb.BuiltinOperator.DEQUANTIZE
        m.operatorCodes.append(code)
        g = m.subgraphs[0]
        out = fb.TensorT()
        out.shape, out.type, out.name, out.buffer = np.array([1, 4], np.int32), fb.TensorType.FLOAT32, "deq", 0
        g.tensors.append(out)
        op = fb.OperatorT()
        op.opcodeIndex = len(m.operatorCodes) - 1
        op.inputs, op.outputs = np.array([-1], np.int32), np.array([len(g.tensors) - 1], np.int32)
        g.operators.append(op)

    rejects(mutated(int8_bytes, bad), "required_inputs", "operator 6 (DEQUANTIZE) leaves its required input 0")


def test_per_channel_tensor_read_where_one_scale_is_needed(int8_bytes):  # aborted LiteRT's SOFTMAX
    def bad(m):
        m.subgraphs[0].operators[5].inputs[0] = constant_tensor(m, ndim=4)

    rejects(mutated(int8_bytes, bad), "per_channel_use", "operator 5 (SOFTMAX) reads per-channel")


def test_per_channel_activation(int8_bytes):
    def bad(m):
        q = m.subgraphs[0].tensors[12].quantization  # FULLY_CONNECTED output, shape (1, 4)
        q.scale, q.zeroPoint = np.repeat(q.scale, 4), np.repeat(q.zeroPoint, 4)
        q.quantizedDimension = 1

    rejects(mutated(int8_bytes, bad), "per_channel_use", "tensor 12", "not constant")


@pytest.mark.parametrize("beta", [0.0, -1.0, float("nan"), 1e-40])
def test_softmax_beta_only_tflm_arithmetic_refuses(int8_bytes, tmp_path, beta):
    """LiteRT's int8 SOFTMAX (a lookup table) runs any beta; TFLM's, and the aot's, abort on these."""
    def bad(m):
        m.subgraphs[0].operators[5].builtinOptions.beta = beta

    path = tmp_path / "beta.tflite"
    path.write_bytes(mutated(int8_bytes, bad))
    model = read_model(path)
    runs_on_litert(path)
    for kernels, family in (("tflm", "TFLM's"), ("aot", "the aot compiler's")):
        with pytest.raises(KernelLimitError) as info:
            check_kernel_limits(model, kernels, path.name)
        message = str(info.value)
        assert message.startswith("beta.tflite: operator 5 (SOFTMAX) has beta ") and "\n" not in message
        assert f"{family} quantized kernel" in message


def test_subnormal_quantization_scale(int8_bytes):  # aborted LiteRT's quantized SOFTMAX
    def bad(m):
        m.subgraphs[0].tensors[12].quantization.scale = np.array([1e-45], dtype=np.float32)

    rejects(mutated(int8_bytes, bad), "quantization", "tensor 12", "normal float32")


def test_depth_multiplier_disagrees_with_filter(int8_bytes):  # crashed TFLM with SIGSEGV
    def bad(m):
        m.subgraphs[0].operators[1].builtinOptions.depthMultiplier = 3

    rejects(mutated(int8_bytes, bad), "operator_shapes", "operator 1 (DEPTHWISE_CONV_2D)", "depth multiplier 3")


def test_empty_input_tensor(int8_bytes):  # crashed TFLM with SIGFPE
    def bad(m):
        m.subgraphs[0].tensors[0].shape = np.array([1, 8, 8, 0], dtype=np.int32)

    rejects(mutated(int8_bytes, bad), "operator_shapes", "uses empty tensor 0")


@pytest.mark.parametrize("change, fragment", [
    (lambda g: setattr(g.tensors[8], "shape", np.array([1, 8, 8, 5], np.int32)), "has shape (1, 8, 8, 5)"),
    (lambda g: setattr(g.tensors[0], "shape", np.array([1, 8, 8, 3], np.int32)), "input channels 3"),
    (lambda g: setattr(g.operators[2].builtinOptions, "filterWidth", 9), "does not fit"),
    (lambda g: setattr(g.operators[2].builtinOptions, "strideW", 1), "(AVERAGE_POOL_2D) output tensor 10"),
    (lambda g: g.operators[0].inputs.__setitem__(2, 1), "bias tensor 1 (arith.constant) of shape (2,)"),
])
def test_operator_output_shapes(int8_bytes, change, fragment):  # TFLM trusts these and crashed
    rejects(mutated(int8_bytes, lambda m: change(m.subgraphs[0])), "operator_shapes", fragment)


def _run_time_batch(m):
    """Mark the batch of every activation as known at run time only, as converters do for batch None."""
    for t in m.subgraphs[0].tensors:
        if m.buffers[t.buffer].data is None:
            t.shapeSignature = np.array([-1, *t.shape[1:]], dtype=np.int32)


def _reshape_activation(m, index, shape):
    t = m.subgraphs[0].tensors[index]
    t.shape = np.array(shape, dtype=np.int32)
    t.shapeSignature = np.array([-1, *shape[1:]], dtype=np.int32)


def test_run_time_batch_does_not_excuse_wrong_shapes(int8_bytes):
    assert read_model(mutated(int8_bytes, _run_time_batch)).tensor(0).shape_signature == (-1, 8, 8, 1)

    def channels(m):
        _run_time_batch(m)
        _reshape_activation(m, 0, [1, 8, 8, 3])

    rejects(mutated(int8_bytes, channels), "operator_shapes", "input channels 3")

    def spatial(m):  # the pooling output's width is static, so it is still checked
        _run_time_batch(m)
        _reshape_activation(m, 10, [1, 4, 2, 8])

    rejects(mutated(int8_bytes, spatial), "operator_shapes", "(AVERAGE_POOL_2D) output tensor 10")


def test_shape_disagreeing_with_its_signature(int8_bytes):
    def bad(m):
        _run_time_batch(m)
        m.subgraphs[0].tensors[9].shape = np.array([1, 8, 38, 4], dtype=np.int32)

    rejects(mutated(int8_bytes, bad), "shapes", "tensor 9", "must agree")


@pytest.mark.parametrize("change, check, fragment", [
    (lambda g: setattr(g.tensors[2], "type", fb.TensorType.STRING), "operator_types", "must be int32"),
    (lambda g: setattr(g.tensors[10], "quantization", None), "operator_types", "without quantization"),
    (lambda g: setattr(g.tensors[10], "type", fb.TensorType.INT16), "operator_types", "writes int16"),
    (lambda g: setattr(g.operators[5], "inputs", np.array([12, 1], np.int32)), "operator_arity",
     "has 2 inputs, but takes 1"),
])
def test_operator_types_and_arity(int8_bytes, change, check, fragment):
    rejects(mutated(int8_bytes, lambda m: change(m.subgraphs[0])), check, fragment)


# ----------------------------------------------------------------------------- dataflow


def test_reads_a_tensor_before_it_is_written(int8_bytes):
    def swap(m):
        ops = m.subgraphs[0].operators
        ops[0], ops[1] = ops[1], ops[0]

    rejects(mutated(int8_bytes, swap), "dataflow", "operator 0 (DEPTHWISE_CONV_2D) reads tensor 8",
            "before any operator writes it")


def test_writes_a_constant(int8_bytes):
    def bad(m):
        m.subgraphs[0].operators[2].outputs[0] = constant_tensor(m)

    rejects(mutated(int8_bytes, bad), "dataflow", "operator 2 (AVERAGE_POOL_2D) writes constant")


def test_writes_a_graph_input(int8_bytes):
    def bad(m):
        m.subgraphs[0].operators[0].outputs[0] = m.subgraphs[0].inputs[0]

    rejects(mutated(int8_bytes, bad), "dataflow", "writes graph input")


def test_writes_a_tensor_twice(int8_bytes):
    def bad(m):
        ops = m.subgraphs[0].operators
        ops[1].outputs[0] = ops[0].outputs[0]  # and operator 2 then reads a tensor nobody wrote

    rejects(mutated(int8_bytes, bad), "dataflow", "which operator 0 already wrote")


def test_cycle_is_caught(int8_bytes):
    def bad(m):
        ops = m.subgraphs[0].operators
        ops[0].inputs[0] = ops[1].outputs[0]  # conv reads what the depthwise conv after it writes

    rejects(mutated(int8_bytes, bad), "dataflow", "operator 0 (CONV_2D) reads tensor 9")


def test_graph_output_never_written(int8_bytes):
    def bad(m):
        g = m.subgraphs[0]
        extra = fb.TensorT()
        extra.shape, extra.type, extra.name, extra.buffer = np.array([1, 4], np.int32), fb.TensorType.INT8, "orphan", 0
        g.tensors.append(extra)
        g.outputs[0] = len(g.tensors) - 1

    rejects(mutated(int8_bytes, bad), "dataflow", "graph output tensor 14 (orphan) is never written")


def test_checks_are_named_and_ordered():
    names = [c.__name__ for c in CHECKS]
    assert names.index("parse_structure") < names.index("check_tensor_indices") < names.index("check_dataflow")
    assert names.index("check_buffer_indices") < names.index("check_constant_sizes")


# ----------------------------------------------------------------------------- the MLPerf Tiny models


def _litert_view(path):
    interpreter_mod = pytest.importorskip("ai_edge_litert.interpreter", reason="ai-edge-litert not installed")
    interpreter = interpreter_mod.Interpreter(model_path=str(path))
    return interpreter.get_tensor_details(), interpreter._get_ops_details()


MLPERF_MODELS = [
    "ad01_fp32.tflite", "ad01_int8.tflite", "kws_ref_model.tflite", "kws_ref_model_float32.tflite",
    "pretrainedResnet.tflite", "pretrainedResnet_quant.tflite",
]


@pytest.mark.parametrize("filename", MLPERF_MODELS)
def test_mlperf_models_match_litert(mlperf_dir, filename):
    path = mlperf_dir / filename
    if not path.is_file():
        pytest.skip(f"{filename} not present")
    model = validate_file(path)
    tensor_details, op_details = _litert_view(path)
    ours = {t.index: t for t in model.tensors}
    for detail in tensor_details:
        t = ours[detail["index"]]
        assert t.name == detail["name"]
        assert t.shape == tuple(int(d) for d in detail["shape"])
        assert t.dtype == np.dtype(detail["dtype"]).name
        q = detail["quantization_parameters"]
        if len(q["scales"]):
            np.testing.assert_array_equal(t.quantization.scale, q["scales"])
            np.testing.assert_array_equal(t.quantization.zero_point, q["zero_points"])
            if len(q["scales"]) > 1:
                assert t.quantization.axis == q["quantized_dimension"]
        else:
            assert t.quantization is None
    real_ops = [d for d in op_details if d["op_name"] != "DELEGATE"]
    assert [op.opcode for op in model.operators] == [d["op_name"] for d in real_ops]
    for op, detail in zip(model.operators, real_ops):
        assert op.inputs == tuple(int(i) for i in detail["inputs"])
        assert op.outputs == tuple(int(i) for i in detail["outputs"])


def test_kws_operator_counts(mlperf_dir):
    model = validate_file(mlperf_dir / "kws_ref_model.tflite")
    counts = {}
    for op in model.operators:
        counts[op.opcode] = counts.get(op.opcode, 0) + 1
    assert counts == {"CONV_2D": 5, "DEPTHWISE_CONV_2D": 4, "AVERAGE_POOL_2D": 1, "RESHAPE": 1,
                      "FULLY_CONNECTED": 1, "SOFTMAX": 1}
    inp = model.tensor(model.inputs[0])
    assert inp.dtype == "int8" and math.prod(inp.shape) == 490


# ----------------------------------------------------------------------------- control flow


@pytest.fixture(scope="module")
def control_flow_bytes() -> bytes:
    """A converted model with WHILE and IF: five subgraphs."""
    tf = pytest.importorskip("tensorflow", reason="tensorflow not installed")

    class Loop(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([1, 4], tf.float32)])
        def run(self, x):
            def body(i, x):
                return i + 1, tf.nn.relu(x * 2.0 - 1.0)

            _, y = tf.while_loop(lambda i, x: i < 3, body, [tf.constant(0), x])
            z = tf.cond(tf.reduce_sum(y) > 0, lambda: y + 1.0, lambda: y - 1.0)
            return tf.nn.softmax(z)

    module = Loop()
    converter = tf.lite.TFLiteConverter.from_concrete_functions([module.run.get_concrete_function()], module)
    return bytes(converter.convert())


def _control_op(m, name: str):
    return m.subgraphs[0].operators[op_index(m, name)]


def test_control_flow_model_reads(control_flow_bytes):
    model = read_model(control_flow_bytes)
    assert model.subgraph_count == 5
    assert {"WHILE", "IF"} <= set(model.ops_used())
    loop = next(op for op in model.operators if op.opcode == "WHILE")
    assert set(loop.options) == {"cond_subgraph_index", "body_subgraph_index"}
    assert all(0 < i < 5 for i in loop.options.values())


def test_while_body_index_out_of_range(control_flow_bytes):  # crashed TFLM with SIGSEGV
    def bad(m):
        _control_op(m, "WHILE").builtinOptions.bodySubgraphIndex = -1

    rejects(mutated(control_flow_bytes, bad), "subgraph_calls", "(WHILE) has body_subgraph_index -1")


def test_subgraphs_calling_each_other_in_a_loop(control_flow_bytes):
    def bad(m):  # the main graph's IF takes the main graph itself as its then-branch
        _control_op(m, "IF").builtinOptions.thenSubgraphIndex = 0

    rejects(mutated(control_flow_bytes, bad), "subgraph_calls", "in a loop (0 -> 0)")


def test_if_branch_with_other_arity(control_flow_bytes):
    def bad(m):
        branch = _control_op(m, "IF").builtinOptions.thenSubgraphIndex
        m.subgraphs[branch].inputs = m.subgraphs[branch].inputs[:0]

    rejects(mutated(control_flow_bytes, bad), "subgraph_calls", "(IF) passes")


def test_call_loops_are_found_at_any_depth():
    from edgekit.tflite.validate import _find_cycle

    assert _find_cycle({0: {1, 2}, 1: {3}, 2: {3}, 3: set()}) is None  # a diamond is no loop
    assert _find_cycle({0: {1}, 1: {2}, 2: {3}, 3: {1}}) == [1, 2, 3, 1]
    chain = {i: {i + 1} for i in range(5000)} | {5000: {0}}  # deep: no recursion limit to hit
    assert len(_find_cycle(chain)) == 5002


def test_control_flow_input_left_empty(control_flow_bytes):  # crashed TFLM and LiteRT with SIGSEGV
    def bad(m):
        _control_op(m, "WHILE").inputs[1] = -1

    rejects(mutated(control_flow_bytes, bad), "required_inputs", "(WHILE) leaves its required input 1")


def test_control_flow_type_mismatch(control_flow_bytes):  # crashed TFLM with SIGSEGV
    def bad(m):
        m.subgraphs[0].tensors[m.subgraphs[0].inputs[0]].type = fb.TensorType.BFLOAT16

    rejects(mutated(control_flow_bytes, bad), "subgraph_calls", "(WHILE) hands tensor", "bfloat16")


def test_reducer_axes_of_the_wrong_type(control_flow_bytes):  # crashed TFLM with SIGSEGV
    def bad(m):
        axes = _control_op(m, "SUM").inputs[1]
        m.subgraphs[0].tensors[axes].type = fb.TensorType.STRING

    rejects(mutated(control_flow_bytes, bad), "operator_types", "(SUM) reads its axes", "string")


def test_graph_input_with_constant_data(int8_bytes):  # crashed LiteRT with SIGSEGV
    def bad(m):
        data = fb.BufferT()
        data.data = np.zeros(64, dtype=np.uint8)  # (1, 8, 8, 1) int8
        m.buffers.append(data)
        m.subgraphs[0].tensors[m.subgraphs[0].inputs[0]].buffer = len(m.buffers) - 1

    rejects(mutated(int8_bytes, bad), "dataflow", "graph input tensor 0", "constant data")
