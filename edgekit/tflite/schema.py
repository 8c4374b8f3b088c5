"""Field tables of the TFLite flatbuffer schema (schema version 3) that edgekit reads.

Numbers here are the schema's: field slots (the n-th field of a table is slot
n), enum values (the position in a tuple is the value) and default values. They
are what makes a .tflite file readable without the flatbuffers package or
TensorFlow's generated schema code.
"""

from __future__ import annotations

from dataclasses import dataclass

SCHEMA_VERSION = 3
FILE_IDENTIFIER = b"TFL3"

# Field slots of the tables the reader walks.
MODEL_VERSION, MODEL_OPERATOR_CODES, MODEL_SUBGRAPHS, MODEL_DESCRIPTION, MODEL_BUFFERS = 0, 1, 2, 3, 4
OPCODE_DEPRECATED_BUILTIN_CODE, OPCODE_CUSTOM_CODE, OPCODE_VERSION, OPCODE_BUILTIN_CODE = 0, 1, 2, 3
SUBGRAPH_TENSORS, SUBGRAPH_INPUTS, SUBGRAPH_OUTPUTS, SUBGRAPH_OPERATORS, SUBGRAPH_NAME = 0, 1, 2, 3, 4
TENSOR_SHAPE, TENSOR_TYPE, TENSOR_BUFFER, TENSOR_NAME, TENSOR_QUANTIZATION = 0, 1, 2, 3, 4
TENSOR_IS_VARIABLE, TENSOR_SPARSITY, TENSOR_SHAPE_SIGNATURE = 5, 6, 7
QUANT_MIN, QUANT_MAX, QUANT_SCALE, QUANT_ZERO_POINT, QUANT_DETAILS_TYPE = 0, 1, 2, 3, 4
QUANT_DETAILS, QUANT_QUANTIZED_DIMENSION = 5, 6
OPERATOR_OPCODE_INDEX, OPERATOR_INPUTS, OPERATOR_OUTPUTS = 0, 1, 2
OPERATOR_BUILTIN_OPTIONS_TYPE, OPERATOR_BUILTIN_OPTIONS, OPERATOR_INTERMEDIATES = 3, 4, 8
BUFFER_DATA, BUFFER_OFFSET, BUFFER_SIZE = 0, 1, 2

# enum TensorType, by value.
TENSOR_TYPES = (
    "FLOAT32", "FLOAT16", "INT32", "UINT8", "INT64", "STRING", "BOOL", "INT16", "COMPLEX64",
    "INT8", "FLOAT64", "COMPLEX128", "UINT64", "RESOURCE", "VARIANT", "UINT32", "UINT16",
    "INT4", "BFLOAT16",
)

# numpy dtype name and storage (a numpy type string, little-endian) of each tensor type.
# INT4 is packed two values per byte and BFLOAT16 has no numpy type: their data
# stays raw (uint8 / uint16 words). STRING, RESOURCE and VARIANT have no fixed
# element size: their data stays raw bytes and is not size-checked.
DTYPES = {
    "FLOAT32": ("float32", "<f4"), "FLOAT16": ("float16", "<f2"), "FLOAT64": ("float64", "<f8"),
    "INT8": ("int8", "i1"), "UINT8": ("uint8", "u1"), "INT16": ("int16", "<i2"),
    "UINT16": ("uint16", "<u2"), "INT32": ("int32", "<i4"), "UINT32": ("uint32", "<u4"),
    "INT64": ("int64", "<i8"), "UINT64": ("uint64", "<u8"), "BOOL": ("bool", "?"),
    "COMPLEX64": ("complex64", "<c8"), "COMPLEX128": ("complex128", "<c16"),
    "BFLOAT16": ("bfloat16", "<u2"), "INT4": ("int4", None),
    "STRING": ("string", None), "RESOURCE": ("resource", None), "VARIANT": ("variant", None),
}

PADDING = ("SAME", "VALID")
ACTIVATION = ("NONE", "RELU", "RELU_N1_TO_1", "RELU6", "TANH", "SIGN_BIT")
FC_WEIGHTS_FORMAT = ("DEFAULT", "SHUFFLED4x16INT8")

# enum BuiltinOperator, by value (0 .. 209, no gaps).
BUILTIN_OPERATORS = (
    'ADD', 'AVERAGE_POOL_2D', 'CONCATENATION', 'CONV_2D', 'DEPTHWISE_CONV_2D', 'DEPTH_TO_SPACE',
    'DEQUANTIZE', 'EMBEDDING_LOOKUP', 'FLOOR', 'FULLY_CONNECTED', 'HASHTABLE_LOOKUP',
    'L2_NORMALIZATION', 'L2_POOL_2D', 'LOCAL_RESPONSE_NORMALIZATION', 'LOGISTIC',
    'LSH_PROJECTION', 'LSTM', 'MAX_POOL_2D', 'MUL', 'RELU', 'RELU_N1_TO_1', 'RELU6', 'RESHAPE',
    'RESIZE_BILINEAR', 'RNN', 'SOFTMAX', 'SPACE_TO_DEPTH', 'SVDF', 'TANH', 'CONCAT_EMBEDDINGS',
    'SKIP_GRAM', 'CALL', 'CUSTOM', 'EMBEDDING_LOOKUP_SPARSE', 'PAD',
    'UNIDIRECTIONAL_SEQUENCE_RNN', 'GATHER', 'BATCH_TO_SPACE_ND', 'SPACE_TO_BATCH_ND',
    'TRANSPOSE', 'MEAN', 'SUB', 'DIV', 'SQUEEZE', 'UNIDIRECTIONAL_SEQUENCE_LSTM',
    'STRIDED_SLICE', 'BIDIRECTIONAL_SEQUENCE_RNN', 'EXP', 'TOPK_V2', 'SPLIT', 'LOG_SOFTMAX',
    'DELEGATE', 'BIDIRECTIONAL_SEQUENCE_LSTM', 'CAST', 'PRELU', 'MAXIMUM', 'ARG_MAX', 'MINIMUM',
    'LESS', 'NEG', 'PADV2', 'GREATER', 'GREATER_EQUAL', 'LESS_EQUAL', 'SELECT', 'SLICE', 'SIN',
    'TRANSPOSE_CONV', 'SPARSE_TO_DENSE', 'TILE', 'EXPAND_DIMS', 'EQUAL', 'NOT_EQUAL', 'LOG',
    'SUM', 'SQRT', 'RSQRT', 'SHAPE', 'POW', 'ARG_MIN', 'FAKE_QUANT', 'REDUCE_PROD',
    'REDUCE_MAX', 'PACK', 'LOGICAL_OR', 'ONE_HOT', 'LOGICAL_AND', 'LOGICAL_NOT', 'UNPACK',
    'REDUCE_MIN', 'FLOOR_DIV', 'REDUCE_ANY', 'SQUARE', 'ZEROS_LIKE', 'FILL', 'FLOOR_MOD',
    'RANGE', 'RESIZE_NEAREST_NEIGHBOR', 'LEAKY_RELU', 'SQUARED_DIFFERENCE', 'MIRROR_PAD', 'ABS',
    'SPLIT_V', 'UNIQUE', 'CEIL', 'REVERSE_V2', 'ADD_N', 'GATHER_ND', 'COS', 'WHERE', 'RANK',
    'ELU', 'REVERSE_SEQUENCE', 'MATRIX_DIAG', 'QUANTIZE', 'MATRIX_SET_DIAG', 'ROUND',
    'HARD_SWISH', 'IF', 'WHILE', 'NON_MAX_SUPPRESSION_V4', 'NON_MAX_SUPPRESSION_V5',
    'SCATTER_ND', 'SELECT_V2', 'DENSIFY', 'SEGMENT_SUM', 'BATCH_MATMUL',
    'PLACEHOLDER_FOR_GREATER_OP_CODES', 'CUMSUM', 'CALL_ONCE', 'BROADCAST_TO', 'RFFT2D',
    'CONV_3D', 'IMAG', 'REAL', 'COMPLEX_ABS', 'HASHTABLE', 'HASHTABLE_FIND', 'HASHTABLE_IMPORT',
    'HASHTABLE_SIZE', 'REDUCE_ALL', 'CONV_3D_TRANSPOSE', 'VAR_HANDLE', 'READ_VARIABLE',
    'ASSIGN_VARIABLE', 'BROADCAST_ARGS', 'RANDOM_STANDARD_NORMAL', 'BUCKETIZE',
    'RANDOM_UNIFORM', 'MULTINOMIAL', 'GELU', 'DYNAMIC_UPDATE_SLICE', 'RELU_0_TO_1',
    'UNSORTED_SEGMENT_PROD', 'UNSORTED_SEGMENT_MAX', 'UNSORTED_SEGMENT_SUM', 'ATAN2',
    'UNSORTED_SEGMENT_MIN', 'SIGN', 'BITCAST', 'BITWISE_XOR', 'RIGHT_SHIFT',
    'STABLEHLO_LOGISTIC', 'STABLEHLO_ADD', 'STABLEHLO_DIVIDE', 'STABLEHLO_MULTIPLY',
    'STABLEHLO_MAXIMUM', 'STABLEHLO_RESHAPE', 'STABLEHLO_CLAMP', 'STABLEHLO_CONCATENATE',
    'STABLEHLO_BROADCAST_IN_DIM', 'STABLEHLO_CONVOLUTION', 'STABLEHLO_SLICE',
    'STABLEHLO_CUSTOM_CALL', 'STABLEHLO_REDUCE', 'STABLEHLO_ABS', 'STABLEHLO_AND',
    'STABLEHLO_COSINE', 'STABLEHLO_EXPONENTIAL', 'STABLEHLO_FLOOR', 'STABLEHLO_LOG',
    'STABLEHLO_MINIMUM', 'STABLEHLO_NEGATE', 'STABLEHLO_OR', 'STABLEHLO_POWER',
    'STABLEHLO_REMAINDER', 'STABLEHLO_RSQRT', 'STABLEHLO_SELECT', 'STABLEHLO_SUBTRACT',
    'STABLEHLO_TANH', 'STABLEHLO_SCATTER', 'STABLEHLO_COMPARE', 'STABLEHLO_CONVERT',
    'STABLEHLO_DYNAMIC_SLICE', 'STABLEHLO_DYNAMIC_UPDATE_SLICE', 'STABLEHLO_PAD',
    'STABLEHLO_IOTA', 'STABLEHLO_DOT_GENERAL', 'STABLEHLO_REDUCE_WINDOW', 'STABLEHLO_SORT',
    'STABLEHLO_WHILE', 'STABLEHLO_GATHER', 'STABLEHLO_TRANSPOSE', 'DILATE',
    'STABLEHLO_RNG_BIT_GENERATOR', 'REDUCE_WINDOW', 'STABLEHLO_COMPOSITE',
    'STABLEHLO_SHIFT_LEFT', 'STABLEHLO_CBRT', 'STABLEHLO_CASE'
)
CUSTOM_CODE = BUILTIN_OPERATORS.index("CUSTOM")


@dataclass(frozen=True)
class OptionField:
    """One field of a builtin options table: slot, storage kind, schema default, enum names."""

    name: str
    slot: int
    kind: str  # 'i8', 'i32', 'f32', 'bool', 'enum' (stored int8) or 'i32_vector'
    default: object = 0
    enum: tuple[str, ...] | None = None


@dataclass(frozen=True)
class OptionsTable:
    """A builtin options table and its value in the BuiltinOptions union (the operator's options type)."""

    name: str
    union_type: int
    fields: tuple[OptionField, ...]


def _enum(name, slot, names, default=0):
    return OptionField(name, slot, "enum", names[default], names)


def _PADDING(slot):
    return _enum("padding", slot, PADDING)


def _ACTIVATION(slot):
    return _enum("fused_activation_function", slot, ACTIVATION)


def _BIAS_TYPE(slot):
    return _enum("quantized_bias_type", slot, TENSOR_TYPES)


# The options tables edgekit decodes; edgekit/tflite/operators.py says which operator uses which.
CONV_2D_OPTIONS = OptionsTable("Conv2DOptions", 1, (
    _PADDING(0), OptionField("stride_w", 1, "i32"), OptionField("stride_h", 2, "i32"),
    _ACTIVATION(3), OptionField("dilation_w_factor", 4, "i32", 1),
    OptionField("dilation_h_factor", 5, "i32", 1), _BIAS_TYPE(6),
))
DEPTHWISE_CONV_2D_OPTIONS = OptionsTable("DepthwiseConv2DOptions", 2, (
    _PADDING(0), OptionField("stride_w", 1, "i32"), OptionField("stride_h", 2, "i32"),
    OptionField("depth_multiplier", 3, "i32"), _ACTIVATION(4),
    OptionField("dilation_w_factor", 5, "i32", 1), OptionField("dilation_h_factor", 6, "i32", 1),
))
POOL_2D_OPTIONS = OptionsTable("Pool2DOptions", 5, (
    _PADDING(0), OptionField("stride_w", 1, "i32"), OptionField("stride_h", 2, "i32"),
    OptionField("filter_width", 3, "i32"), OptionField("filter_height", 4, "i32"), _ACTIVATION(5),
))
FULLY_CONNECTED_OPTIONS = OptionsTable("FullyConnectedOptions", 8, (
    _ACTIVATION(0), _enum("weights_format", 1, FC_WEIGHTS_FORMAT),
    OptionField("keep_num_dims", 2, "bool", False),
    OptionField("asymmetric_quantize_inputs", 3, "bool", False), _BIAS_TYPE(4),
))
SOFTMAX_OPTIONS = OptionsTable("SoftmaxOptions", 9, (OptionField("beta", 0, "f32", 0.0),))
CONCATENATION_OPTIONS = OptionsTable("ConcatenationOptions", 10, (
    OptionField("axis", 0, "i32"), _ACTIVATION(1),
))
ADD_OPTIONS = OptionsTable("AddOptions", 11, (
    _ACTIVATION(0), OptionField("pot_scale_int16", 1, "bool", True),
))
RESHAPE_OPTIONS = OptionsTable("ReshapeOptions", 17, (OptionField("new_shape", 0, "i32_vector", None),))
MUL_OPTIONS = OptionsTable("MulOptions", 21, (_ACTIVATION(0),))
PAD_OPTIONS = OptionsTable("PadOptions", 22, ())
REDUCER_OPTIONS = OptionsTable("ReducerOptions", 27, (OptionField("keep_dims", 0, "bool", False),))
SUB_OPTIONS = OptionsTable("SubOptions", 28, (
    _ACTIVATION(0), OptionField("pot_scale_int16", 1, "bool", True),
))
STRIDED_SLICE_OPTIONS = OptionsTable("StridedSliceOptions", 32, (
    OptionField("begin_mask", 0, "i32"), OptionField("end_mask", 1, "i32"),
    OptionField("ellipsis_mask", 2, "i32"), OptionField("new_axis_mask", 3, "i32"),
    OptionField("shrink_axis_mask", 4, "i32"), OptionField("offset", 5, "bool", False),
))
DEQUANTIZE_OPTIONS = OptionsTable("DequantizeOptions", 38, ())
SHAPE_OPTIONS = OptionsTable("ShapeOptions", 55, (_enum("out_type", 0, TENSOR_TYPES),))
PACK_OPTIONS = OptionsTable("PackOptions", 59, (
    OptionField("values_count", 0, "i32"), OptionField("axis", 1, "i32"),
))
QUANTIZE_OPTIONS = OptionsTable("QuantizeOptions", 89, ())
HARD_SWISH_OPTIONS = OptionsTable("HardSwishOptions", 91, ())
IF_OPTIONS = OptionsTable("IfOptions", 92, (
    OptionField("then_subgraph_index", 0, "i32"), OptionField("else_subgraph_index", 1, "i32"),
))
WHILE_OPTIONS = OptionsTable("WhileOptions", 93, (
    OptionField("cond_subgraph_index", 0, "i32"), OptionField("body_subgraph_index", 1, "i32"),
))
CALL_ONCE_OPTIONS = OptionsTable("CallOnceOptions", 103, (OptionField("init_subgraph_index", 0, "i32"),))
