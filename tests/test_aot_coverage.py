"""Coverage of today's common edge models: HARD_SWISH and compile-time folding of shape subgraphs.

HARD_SWISH int8 is TFLM's int16 fixed-point arithmetic tabulated at compile
time: the table is checked against TFLM on every input value for scales that
take each of its paths, and the compiled bundles against TFLM (int8, bit for
bit) and LiteRT (float32). Folding is checked on the subgraph Keras writes for
a Reshape of a tensor with a run-time batch (SHAPE -> STRIDED_SLICE -> PACK ->
RESHAPE), and its STRIDED_SLICE against TensorFlow's own on random masks. The
slow test converts Keras' MobileNetV3-Small as a user would and runs it through
the aot backend on the host against TFLM.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.test_aot_ops_extra import (
    FLOAT_RTOL, HostBundle, assert_bit_exact, int8_inputs, litert_run, needs_cc, output_order, tflm_run,
)  # fmt: skip
from tests import test_aot_builder as _builder
from tinymodels import to_tflite

# ---- HARD_SWISH: the compile-time table against TFLM, on every int8 input ------------------------

# (input scale, input zero point, output scale, output zero point): the relu-ish multiplier's exponent
# negative (small input scales) and positive (large ones, where TFLM's left shift saturates), output
# exponents from 0 down past -15 (where the int16 rounding mask wraps), extreme zero points.
HARD_SWISH_QUANT = [
    (0.02, -128, 0.015, -128),
    (0.05, 10, 0.04, -90),
    (0.003, 0, 0.0025, -7),
    (0.0117, -3, 0.0116, -120),
    (0.2, 127, 0.19, -128),
    (1.7, -60, 1.2, 5),
    (3.0, 40, 2.5, -128),
    (0.05, -20, 0.05 / 128 * 1.01, 0),  # output multiplier just below 1: exponent 0
    (0.01, 33, 60.0, -128),  # output exponent -20
    (0.125, -128, 0.0625, -128),  # powers of two: rounding ties
]


def hard_swish_model(quant=HARD_SWISH_QUANT, dtype="int8", shape=(1, 256)) -> bytes:
    """One HARD_SWISH per quantization, each on its own model input (float32: one of them)."""
    b = _builder.ModelBuilder()
    ins, outs = [], []
    for in_scale, in_zp, out_scale, out_zp in quant if dtype == "int8" else quant[:1]:
        if dtype == "int8":
            x = b.tensor(shape, scale=in_scale, zero_point=in_zp)
            y = b.tensor(shape, scale=out_scale, zero_point=out_zp)
        else:
            x, y = b.tensor(shape, "float32"), b.tensor(shape, "float32")
        b.op("HARD_SWISH", [x], [y])
        ins.append(x)
        outs.append(y)
    return b.build(ins, outs)


def test_hard_swish_table_matches_tflm_on_every_input():
    """The Python port of TFLM's int8 HardSwish gives TFLM's answer for all 256 inputs, on every
    quantization above (no C compiler involved)."""
    from edgekit.aot.compiler import TFLM_SINGLE_ROUNDING
    from edgekit.aot.ops.hard_swish import hard_swish_params, hard_swish_table

    exponents = [hard_swish_params(q[0], q[2], False) for q in HARD_SWISH_QUANT]
    assert {e[3] > 0 for e in exponents} == {True, False}, "both relu-ish shift directions"
    assert min(e[1] for e in exponents) < -15 and max(e[1] for e in exponents) == 0

    model = hard_swish_model()
    every = np.arange(-128, 128, dtype=np.int8).reshape(1, 1, 256)
    reference = tflm_run(model, [every] * len(HARD_SWISH_QUANT))
    for (in_scale, in_zp, out_scale, out_zp), want in zip(HARD_SWISH_QUANT, reference):
        table = hard_swish_table(np.float32(in_scale), in_zp, np.float32(out_scale), out_zp, TFLM_SINGLE_ROUNDING)
        np.testing.assert_array_equal(np.array(table, np.int8), want.reshape(-1),
                                      err_msg=f"quantization {(in_scale, in_zp, out_scale, out_zp)}")  # fmt: skip


@needs_cc
def test_hard_swish_bundle_bit_exact_with_tflm(tmp_path):
    model = hard_swish_model(shape=(1, 4, 8, 8))
    feed = [int8_inputs((4, 8, 8), seed=k)[:20] for k in range(len(HARD_SWISH_QUANT))]
    bundle = HostBundle(model, tmp_path)
    assert "ek_lut_s8(" in bundle.bundle.source
    assert_bit_exact(model, bundle, feed)


@needs_cc
def test_hard_swish_float_matches_tflm_and_litert(tmp_path):
    """float32: the same bits as TFLM's reference kernel, within 1e-5 of LiteRT; -3 and 3 (the
    corners), values far out and signed zeros included."""
    model = hard_swish_model(dtype="float32", shape=(1, 64))
    x = np.random.default_rng(0).uniform(-8, 8, size=(30, 1, 64)).astype(np.float32)
    x[0, 0, :8] = [-3.0, 3.0, 0.0, -0.0, -1e30, 1e30, 2.9999998, -3.0000002]
    bundle = HostBundle(model, tmp_path)
    (got,) = bundle.run([x])
    (want,) = tflm_run(model, [x])
    np.testing.assert_array_equal(got.view(np.uint32), want.reshape(got.shape).view(np.uint32))
    (lite,) = litert_run(model, [x])
    np.testing.assert_allclose(got, lite.reshape(got.shape), rtol=FLOAT_RTOL, atol=FLOAT_RTOL)


def test_hard_swish_output_scale_tflm_refuses_is_named():
    """An output scale below input scale / 128 makes TFLM's Prepare fail; the compiler says why."""
    from edgekit.aot.compiler import UnsupportedOpsError, compile_model

    with pytest.raises(UnsupportedOpsError, match=r"HARD_SWISH \(output scale below input scale / 128\)"):
        compile_model(hard_swish_model([(0.5, 0, 0.001, 0)]))


# ---- converted Keras models: hard swish and a folded shape subgraph --------------------------------


def _keras():
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    return keras


def hard_swish_block():
    """MobileNetV3's activation as Keras writes it, x * relu6(x + 3) / 6 (the converter fuses it into
    HARD_SWISH), after a conv and on a squeeze-excite gate."""
    keras = _keras()
    layers = keras.layers

    def hard_swish(v, name):
        gate = layers.Rescaling(1.0 / 6.0, name=f"{name}_div")(layers.ReLU(6.0, name=f"{name}_relu6")(
            layers.Rescaling(1.0, offset=3.0, name=f"{name}_add")(v)))
        return layers.Multiply(name=name)([v, gate])

    x = keras.Input(shape=(6, 6, 3), batch_size=1)
    h = hard_swish(layers.Conv2D(8, 3, padding="same", name="conv")(x), "hs1")
    h = layers.DepthwiseConv2D(3, padding="same", name="dw")(h)
    h = hard_swish(h, "hs2")
    return keras.Model(x, [layers.Conv2D(4, 1, name="project")(h), h])


def reshape_block():
    """EfficientNet's squeeze-excite: global pooling, then Reshape((1, 1, C)) on a batch known only at
    run time, which the converter writes as SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE."""
    keras = _keras()
    layers = keras.layers
    x = keras.Input(shape=(5, 5, 4))  # no batch size: the batch is a run-time dimension
    h = layers.Conv2D(6, 3, padding="same", activation="relu", name="conv")(x)
    s = layers.GlobalAveragePooling2D(name="squeeze")(h)
    s = layers.Reshape((1, 1, 6), name="reshape")(s)
    s = layers.Conv2D(6, 1, activation="sigmoid", name="excite")(s)
    return keras.Model(x, [layers.Multiply(name="scale")([h, s])])


KERAS = {"hard_swish_block": (hard_swish_block, (6, 6, 3)), "reshape_block": (reshape_block, (5, 5, 4))}
_CACHE: dict = {}


def converted(key: str, quantize: str) -> bytes:
    if (key, quantize) not in _CACHE:
        build, shape = KERAS[key]
        calibration = np.random.default_rng(7).uniform(-2.0, 1.0, size=(24, *shape)).astype(np.float32)
        _CACHE[(key, quantize)] = to_tflite(build(), quantize=quantize, calibration=calibration)
    return _CACHE[(key, quantize)]


def test_converted_models_hold_the_operators_under_test():
    from edgekit.aot.graph import graph_from_model
    from edgekit.tflite.reader import read_model

    for quantize in ("int8", "none"):
        ops = read_model(converted("hard_swish_block", quantize)).ops_used()
        assert "HARD_SWISH" in ops, ops
        parsed = read_model(converted("reshape_block", quantize))
        assert {"SHAPE", "STRIDED_SLICE", "PACK", "RESHAPE"} <= set(parsed.ops_used()), parsed.ops_used()
        folded = [n.opcode for n in graph_from_model(parsed, "net").nodes]
        assert "RESHAPE" in folded and not {"SHAPE", "STRIDED_SLICE", "PACK"} & set(folded), folded


@needs_cc
@pytest.mark.parametrize("key", sorted(KERAS))
def test_keras_int8_bit_exact_with_tflm(key, tmp_path):
    model = converted(key, "int8")
    assert_bit_exact(model, HostBundle(model, tmp_path), [int8_inputs(KERAS[key][1], seed=3)[:60]])


@needs_cc
@pytest.mark.parametrize("key", sorted(KERAS))
def test_keras_float32_close_to_litert(key, tmp_path):
    model = converted(key, "none")
    bundle = HostBundle(model, tmp_path)
    x = np.random.default_rng(3).uniform(-6.0, 6.0, size=(20, 1, *KERAS[key][1])).astype(np.float32)
    ours, reference = bundle.run([x]), litert_run(model, [x])
    for k, pos in enumerate(output_order(model)):
        got, want = ours[k], reference[pos].reshape(ours[k].shape)
        np.testing.assert_allclose(got, want, rtol=FLOAT_RTOL, atol=FLOAT_RTOL * float(np.abs(want).max()))


# ---- the folding pass -------------------------------------------------------------------------------


def test_folded_strided_slice_equals_tensorflow():
    """The folder's STRIDED_SLICE (begin/end/shrink masks, negative strides, bounds negative and out
    of range) against tf.strided_slice on random cases; TFLite's `offset` against its definition."""
    import tensorflow as tf

    from edgekit.aot.fold import _strided_slice
    from edgekit.aot.graph import Node

    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(300):
        rank = int(rng.integers(1, 4))
        data = rng.integers(-99, 99, size=tuple(int(n) for n in rng.integers(1, 6, rank))).astype(np.int32)
        begin, end = rng.integers(-7, 7, rank), rng.integers(-7, 7, rank)
        strides = rng.choice([-2, -1, 1, 1, 2, 3], rank)
        masks = {k: int(rng.integers(0, 1 << rank)) for k in ("begin_mask", "end_mask")}
        # shrink only where the stride is 1 and begin_mask is clear (TensorFlow ignores begin_mask on
        # a shrunk axis, TFLite does not; converters never set both)
        shrinkable = sum(1 << i for i in range(rank) if strides[i] == 1) & ~masks["begin_mask"]
        masks["shrink_axis_mask"] = int(rng.integers(0, 1 << rank)) & int(shrinkable)
        node = Node(0, "STRIDED_SLICE", (0, 1, 2, 3), (4,), dict(masks))
        got = _strided_slice(node, None, [data, begin, end, strides])
        try:
            want = tf.strided_slice(data, begin, end, strides, **masks).numpy()
        except tf.errors.InvalidArgumentError:
            continue  # a shrunk index out of range: TensorFlow refuses, TFLite clamps
        np.testing.assert_array_equal(got, want, err_msg=f"{data.shape} {begin} {end} {strides} {masks}")
        checked += 1
        # offset: end counts from the (resolved) begin
        if not masks["begin_mask"] | masks["end_mask"] and (0 <= begin).all() and (begin < data.shape).all() \
                and (end >= 0).all():
            node.options["offset"] = True
            got = _strided_slice(node, None, [data, begin, end - begin, strides])
            np.testing.assert_array_equal(got, want)
    assert checked > 200, checked


def test_quantized_data_movement_that_changes_scale_is_not_folded():
    """A RESHAPE of a constant whose output carries another scale is a requantization, not a move:
    the folder leaves it (the emitter then handles or refuses it), and folds the plain one."""
    from edgekit.aot.fold import fold_constants
    from edgekit.aot.graph import graph_from_model
    from edgekit.tflite.reader import read_model

    b = _builder.ModelBuilder()
    x = b.tensor((1, 4), scale=0.5, zero_point=0)
    c = b.tensor((2, 2), data=np.arange(4).reshape(2, 2), scale=0.5, zero_point=0)
    new_shape = b.tensor((2,), "int32", data=np.array([1, 4], np.int32))
    same, other = b.tensor((1, 4), scale=0.5, zero_point=0), b.tensor((1, 4), scale=0.25, zero_point=0)
    b.op("RESHAPE", [c, new_shape], [same])
    b.op("RESHAPE", [c, new_shape], [other])
    y, z = b.tensor((1, 4), scale=1.0, zero_point=0), b.tensor((1, 4), scale=1.0, zero_point=0)
    b.op("ADD", [x, same], [y], fused_activation_function="NONE")
    b.op("ADD", [x, other], [z], fused_activation_function="NONE")
    graph = fold_constants(graph_from_model(read_model(b.build([x], [y, z])), "net"))
    assert [n.opcode for n in graph.nodes] == ["RESHAPE", "ADD", "ADD"]
    assert graph.nodes[0].outputs == (other,)
    np.testing.assert_array_equal(graph.tensors[same].data, [[0, 1, 2, 3]])


# ---- a Keras application, converted as a user would ---------------------------------------------


def _mobilenet_v3_small(size: int):
    """Keras' MobileNetV3-Small, untrained (nothing downloads). Its batch-norm statistics are set
    from the calibration batch first (one training-mode pass with momentum 0): an untrained
    network's activations otherwise shrink layer by layer until the converter gives the logits a
    scale (about 1e-8) for which TFLM's int8 SOFTMAX refuses the model."""
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)
    model = tf.keras.applications.MobileNetV3Small(
        input_shape=(size, size, 3), alpha=0.75, minimalistic=False, weights=None, classes=10
    )
    calibration = np.random.default_rng(0).uniform(0, 255, size=(8, size, size, 3)).astype(np.float32)
    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            layer.momentum = 0.0
    model(calibration, training=True)
    return model, calibration


@pytest.mark.slow
@needs_cc
def test_mobilenet_v3_small_int8_through_the_aot_backend_bit_exact_with_tflm(tmp_path):
    from edgekit import backends, pipeline, targets
    from edgekit.core import RunOptions
    from edgekit.tflite.reader import read_model

    keras_model, calibration = _mobilenet_v3_small(32)
    path = tmp_path / "mobilenet_v3_small.tflite"
    path.write_bytes(to_tflite(keras_model, quantize="int8", calibration=calibration))
    ops = read_model(path).ops_used()
    assert {"HARD_SWISH", "SHAPE", "STRIDED_SLICE", "PACK"} <= set(ops), ops
    artifact = pipeline.convert(str(path), target="host-cpu", backend="aot", quantization="int8").artifact
    xs = int8_inputs((32, 32, 3), seed=5)[:12]
    reference = tflm_run(path.read_bytes(), [xs])[0]
    spec = artifact.outputs[0]
    with backends.get("aot").load(artifact, targets.get("host-cpu"), RunOptions()) as runner:
        got = np.stack([runner.infer({artifact.inputs[0].name: x})[spec.name] for x in xs])
    np.testing.assert_array_equal(got.reshape(reference.shape), reference)
    assert len(np.unique(reference)) > 1, "the outputs carry information"


# ---- the reader's records of the new operators -------------------------------------------------------


def _mutated_op(data: bytes, opcode: str, change) -> bytes:
    """`data` with `change(model, operator, subgraph)` applied to the first operator of `opcode`."""
    from tests.test_reader import mutated, op_index

    def apply(m):
        graph = m.subgraphs[0]
        change(m, graph.operators[op_index(m, opcode)], graph)

    return mutated(data, apply)


def _set_shape(graph, tensor: int, shape) -> None:
    graph.tensors[tensor].shape = np.array(shape, np.int32)
    graph.tensors[tensor].shapeSignature = None


def _static(graph) -> None:
    """Every shape static (a run-time batch leaves an output's first dimension unchecked)."""
    for t in graph.tensors:
        t.shapeSignature = None


@pytest.mark.parametrize("key, opcode, change, check, fragment", [
    ("hard_swish_block", "HARD_SWISH", lambda m, op, g: setattr(op, "inputs", np.array([*op.inputs, op.inputs[0]])),
     "operator_arity", "has 2 inputs, but takes 1"),
    ("hard_swish_block", "HARD_SWISH", lambda m, op, g: _set_shape(g, op.outputs[0], [1, 6, 6, 9]),
     "operator_shapes", "but its inputs give (1, 6, 6, 8)"),
    ("reshape_block", "SHAPE", lambda m, op, g: (_static(g), _set_shape(g, op.outputs[0], [3])),
     "operator_shapes", "has shape (3,), but its inputs give (2,)"),
    ("reshape_block", "PACK", lambda m, op, g: setattr(op.builtinOptions, "valuesCount", 3),
     "operator_shapes", "packs 3 values but has 4 inputs"),
    ("reshape_block", "PACK", lambda m, op, g: setattr(op.builtinOptions, "axis", 3),
     "operator_shapes", "packs rank-0 values along axis 3"),
    ("reshape_block", "STRIDED_SLICE", lambda m, op, g: setattr(op, "inputs", np.array(op.inputs[:3])),
     "operator_arity", "has 3 inputs, but takes 4"),
])  # fmt: skip
def test_reader_holds_new_operators_to_their_kernels(key, opcode, change, check, fragment):
    """HARD_SWISH, SHAPE, PACK and STRIDED_SLICE files that break what their kernels assume are refused
    by the reader, before any backend sees them."""
    pytest.importorskip("ai_edge_litert.schema_py_generated", reason="ai-edge-litert not installed")
    from tests.test_reader import rejects

    rejects(_mutated_op(converted(key, "int8"), opcode, change), check, fragment)


def test_reader_decodes_the_new_options():
    from edgekit.tflite.reader import read_model

    ops = {op.opcode: op.options for op in read_model(converted("reshape_block", "int8")).operators}
    assert ops["SHAPE"] == {"out_type": "INT32"}
    assert ops["STRIDED_SLICE"]["shrink_axis_mask"] == 1
    assert ops["PACK"] == {"values_count": 4, "axis": 0}


def test_docs_list_exactly_the_operators_the_compiler_takes():
    """docs/aot.md's operator table names every opcode with an emitter and no other; its list of TFLM
    operators the compiler does not take shares none with it."""
    import re

    from edgekit.aot.ops.base import supported_opcodes

    text = (Path(__file__).resolve().parents[1] / "docs" / "aot.md").read_text()
    section = text.split("## Operators", 1)[1]
    table_text = section.split("Folded at compile time", 1)[0]
    table = [line.split("|")[1] for line in table_text.splitlines() if line.startswith("| ") and "---" not in line]
    listed = {name.strip() for cell in table[1:] for name in cell.split(",")}
    assert listed == set(supported_opcodes())
    missing = section.split("does not take", 1)[1].split("(RELU and RELU6", 1)[0]
    not_taken = set(re.findall(r"\b[A-Z][A-Z0-9_]+[A-Z0-9]\b", missing)) - {"TFLM"}
    assert len(not_taken) > 50 and not not_taken & listed, not_taken & listed


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc not installed")
@pytest.mark.parametrize("quantize", ["int8", "none"])
def test_bundles_compile_for_cortex_m4(quantize, tmp_path):
    from edgekit.aot.compiler import compile_model

    for key in sorted(KERAS):
        bundle = compile_model(converted(key, quantize), name=key, features={"dsp"})
        bundle.write(tmp_path)
        subprocess.run(
            ["arm-none-eabi-gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-mcpu=cortex-m4", "-mthumb",
             "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16", "-c", str(tmp_path / f"{key}.c"), "-o", str(tmp_path / f"{key}.o")],
            check=True, capture_output=True, text=True,
        )  # fmt: skip


@pytest.mark.slow
@pytest.mark.skipif(
    not all(shutil.which(t) for t in ("qemu-system-arm", "arm-none-eabi-gcc", "cmake")),
    reason="qemu-system-arm, arm-none-eabi-gcc and cmake are needed for the emulated board",
)
def test_hard_swish_and_folded_reshape_on_emulated_cortex_m4_match_tflm(tmp_path):
    """Both Keras blocks, int8, cross-compiled with the DSP path and run on the emulated Cortex-M4."""
    from edgekit import backends, pipeline, targets
    from edgekit.core import RunOptions

    for key in sorted(KERAS):
        model = tmp_path / f"{key}.tflite"
        model.write_bytes(converted(key, "int8"))
        artifact = pipeline.convert(str(model), target="mps2-an386", backend="aot", quantization="int8").artifact
        xs = int8_inputs(KERAS[key][1], seed=9)[:6]
        reference = tflm_run(model.read_bytes(), [xs])
        with backends.get("aot").load(artifact, targets.get("mps2-an386"), RunOptions()) as runner:
            for i, x in enumerate(xs):
                got = runner.infer({artifact.inputs[0].name: x})
                for k, spec in enumerate(artifact.outputs):
                    np.testing.assert_array_equal(got[spec.name], reference[k][i].reshape(spec.shape),
                                                  err_msg=f"{key} sample {i} output {k}")  # fmt: skip
