"""Fuzzing the .tflite reader: damaged and random files only ever raise InvalidModelError.

Any file the reader accepts must be safe to hand to an interpreter: every
index in range, constant data the size its shape says, valid quantization.
Hypothesis runs derandomized (the same examples on every run) and bounded.
"""

from __future__ import annotations

import math
import signal
import struct
from contextlib import contextmanager

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinymodels
from edgekit.errors import InvalidModelError
from edgekit.tflite.model import Model
from edgekit.tflite.reader import read_model

FUZZ = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
RAW_DTYPES = ("int4", "bfloat16", "string", "resource", "variant")  # data kept as raw words
SECONDS_PER_FILE = 5  # a linear reader takes milliseconds on these; more means it loops


@pytest.fixture(scope="module", autouse=True)
def _needs_converter():
    pytest.importorskip("tf_keras", reason="tf-keras not installed: cannot build test models")


def base_model() -> bytes:
    return tinymodels.tiny_int8_cnn_bytes()


@contextmanager
def hang_guard():
    """Fail (instead of hanging the suite) if one read takes far too long."""

    def timeout(signum, frame):
        raise AssertionError(f"read_model took more than {SECONDS_PER_FILE} s: it must stay linear")

    previous = signal.signal(signal.SIGALRM, timeout)
    signal.alarm(SECONDS_PER_FILE)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def read_or_reject(data: bytes) -> Model | None:
    """The model if accepted, None if rejected with InvalidModelError; anything else fails the test."""
    with hang_guard():
        try:
            model = read_model(data, name="fuzzed.tflite")
        except InvalidModelError as exc:
            message = str(exc)
            assert message.startswith("fuzzed.tflite: ") and "\n" not in message
            return None
    assert_safe(model)
    return model


def assert_safe(model: Model) -> None:
    """What an interpreter relies on, checked on a model the reader accepted."""
    n = len(model.tensors)
    assert all(t.index == i for i, t in enumerate(model.tensors))
    assert all(0 <= i < n for i in model.inputs + model.outputs)
    for op in model.operators:
        assert all(i == -1 or 0 <= i < n for i in op.inputs)
        assert all(0 <= i < n for i in op.outputs)
        assert op.opcode
    for t in model.tensors:
        assert all(d >= 0 for d in t.shape)
        assert math.prod(t.shape) < 2**31
        if t.data is not None:
            assert not t.data.flags.writeable
            if t.dtype not in RAW_DTYPES and not (t.data.ndim == 1 and t.data.dtype == np.uint8):
                assert t.data.shape == t.shape and t.data.dtype.name == t.dtype  # else sparse: raw bytes
        q = t.quantization
        if q is not None:
            assert q.scale.dtype == np.float32 and q.zero_point.dtype == np.int64
            assert q.scale.shape == q.zero_point.shape and len(q.scale) >= 1
            assert np.all(np.isfinite(q.scale)) and np.all(q.scale > 0)
            if len(q.scale) > 1:
                assert 0 <= q.axis < len(t.shape) and t.shape[q.axis] == len(q.scale)


# ----------------------------------------------------------------------------- byte-level damage

positions = st.integers(min_value=0, max_value=1 << 16)


def _flip(data: bytearray, pos: int, value: int) -> None:
    if data:
        data[pos % len(data)] = value


def _put_u32(data: bytearray, pos: int, value: int) -> None:
    """Overwrite an aligned word: offsets, lengths and indices are where parsers break."""
    if len(data) >= 4:
        at = (pos % (len(data) - 3)) & ~3
        struct.pack_into("<I", data, at, value)


edits = st.one_of(
    st.tuples(st.just("flip"), positions, st.integers(0, 255)),
    st.tuples(st.just("u32"), positions, st.sampled_from(
        [0, 1, 2, 3, 4, 7, 8, 13, 14, 15, 100, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
         0xFFFFFFFC])),
    st.tuples(st.just("insert"), positions, st.binary(min_size=1, max_size=8)),
    st.tuples(st.just("delete"), positions, st.integers(1, 64)),
    st.tuples(st.just("truncate"), positions, st.just(0)),
)


def apply(data: bytes, edit) -> bytes:
    kind, pos, arg = edit
    out = bytearray(data)
    if kind == "flip":
        _flip(out, pos, arg)
    elif kind == "u32":
        _put_u32(out, pos, arg)
    elif kind == "insert":
        at = pos % (len(out) + 1)
        out[at:at] = arg
    elif kind == "delete" and out:
        at = pos % len(out)
        del out[at:at + arg]
    elif kind == "truncate":
        del out[pos % (len(out) + 1):]
    return bytes(out)


@FUZZ
@given(st.lists(edits, min_size=1, max_size=6))
def test_damaged_model_is_rejected_or_safe(edit_list):
    data = base_model()
    for edit in edit_list:
        data = apply(data, edit)
    read_or_reject(data)


@FUZZ
@given(st.binary(max_size=2048), st.booleans())
def test_random_bytes_are_rejected_or_safe(body, with_header):
    if with_header:  # get past the identifier check into the flatbuffer walk
        body = struct.pack("<I", 8 + len(body) % 64) + b"TFL3" + body
    read_or_reject(body)


# ----------------------------------------------------------------------------- field-level damage

fb = pytest.importorskip("ai_edge_litert.schema_py_generated", reason="ai-edge-litert not installed")
flatbuffers = pytest.importorskip("flatbuffers", reason="flatbuffers not installed")

small_ints = st.integers(min_value=-3, max_value=40)


def _set_field(model, choice: int, which: int, value: int) -> None:
    """One plausible-looking but possibly wrong value in one index, shape, buffer or scale field."""
    g = model.subgraphs[0]
    op = g.operators[which % len(g.operators)]
    tensor = g.tensors[which % len(g.tensors)]
    if choice == 0 and len(op.inputs):
        op.inputs[value % len(op.inputs)] = value
    elif choice == 1:
        op.outputs[0] = value
    elif choice == 2:
        op.opcodeIndex = abs(value)
    elif choice == 3:
        tensor.buffer = abs(value)
    elif choice == 4 and tensor.shape is not None and len(tensor.shape):
        shape = np.array(tensor.shape, dtype=np.int32)
        shape[value % len(shape)] = value
        tensor.shape = shape
    elif choice == 5 and tensor.quantization is not None and tensor.quantization.scale is not None:
        tensor.quantization.scale = np.full_like(tensor.quantization.scale, value / 4.0)
    elif choice == 6 and tensor.quantization is not None:
        tensor.quantization.quantizedDimension = value
    elif choice == 7:
        g.inputs[0] = value
    elif choice == 8:
        tensor.type = value
    elif choice == 9:
        g.operators.insert(value % (len(g.operators) + 1), g.operators.pop(which % len(g.operators)))
    elif choice == 10 and tensor.shape is not None and len(tensor.shape):
        signature = np.array(tensor.shape, dtype=np.int32)  # a run-time dimension: shape is a placeholder
        signature[value % len(signature)] = -1
        tensor.shapeSignature = signature


@FUZZ
@given(st.lists(st.tuples(st.integers(0, 10), st.integers(0, 100), small_ints), min_size=1, max_size=3))
def test_wrong_fields_are_rejected_or_safe(changes):
    model = fb.ModelT.InitFromPackedBuf(bytearray(base_model()), 0)
    for choice, which, value in changes:
        _set_field(model, choice, which, value)
    builder = flatbuffers.Builder(4096)
    try:
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    except (struct.error, OverflowError, ValueError):
        return  # the writer itself cannot store this value (e.g. a negative unsigned field)
    read_or_reject(bytes(builder.Output()))
