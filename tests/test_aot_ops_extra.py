"""AOT operators MUL, CONCATENATION, PAD/PADV2, MEAN, QUANTIZE, DEQUANTIZE, LOGISTIC.

Tiny Keras models are converted to int8 (full integer) and float32, compiled
to C, built with the host C compiler and run on many inputs in one process.
int8 outputs must equal the TFLM reference interpreter's bit for bit; float32
outputs must be within 1e-5 relative of LiteRT. Every intermediate result an
operator produces is a model output, so a mismatch names the operator.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tinymodels import to_tflite

ARM_CC = shutil.which("arm-none-eabi-gcc")


def _host_cc_missing() -> str | None:
    from edgekit.aot.hostbuild import host_compiler

    try:
        host_compiler()
    except Exception as exc:  # noqa: BLE001 - the skip reason
        return str(exc)
    return None


_NO_CC = _host_cc_missing()
needs_cc = pytest.mark.skipif(_NO_CC is not None, reason=_NO_CC or "")

SAMPLES = 150
FLOAT_RTOL = 1e-5


class HostBundle:
    """A compiled bundle built with the host compiler (edgekit.aot.hostbuild) and loaded in process."""

    def __init__(self, model, folder: Path, name: str = "net"):
        """`model`: .tflite bytes, or a `CompiledBundle` already compiled."""
        from edgekit.aot.compiler import CompiledBundle, compile_model
        from edgekit.aot.hostbuild import load_bundle

        self.bundle = model if isinstance(model, CompiledBundle) else compile_model(model, name=name)
        self.bundle.write(folder)
        self.host = load_bundle(self.bundle, folder)

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """inputs[k]: a batch for model input k; returns one batch per model output."""
        runs = [self.host.run(*[batch[i] for batch in inputs]) for i in range(len(inputs[0]))]
        return [
            np.stack([r[k] for r in runs]).reshape(len(runs), *t.shape)
            for k, t in enumerate(self.bundle.outputs)
        ]


def tflm_run(model: bytes, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """The TFLM reference interpreter's outputs, in the model's output order, for each sample."""
    from tflite_micro.python.tflite_micro import runtime

    from edgekit.tflite.reader import read_model

    n_out = len(read_model(model).outputs)
    # the default arena (10x the model size) is too small for tiny models with large tensors
    interpreter = runtime.Interpreter.from_bytes(model, arena_size=1 << 20)
    results = [[] for _ in range(n_out)]
    for i in range(len(inputs[0])):
        for k, batch in enumerate(inputs):
            interpreter.set_input(batch[i], k)
        interpreter.invoke()
        for k in range(n_out):
            results[k].append(np.array(interpreter.get_output(k)))
    return [np.stack(r) for r in results]


def litert_run(model: bytes, inputs: list[np.ndarray]) -> list[np.ndarray]:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=model)
    interpreter.allocate_tensors()
    ins = interpreter.get_input_details()
    outs = interpreter.get_output_details()
    results = [[] for _ in outs]
    for i in range(len(inputs[0])):
        for k, d in enumerate(ins):
            interpreter.set_tensor(d["index"], inputs[k][i])
        interpreter.invoke()
        for k, d in enumerate(outs):
            results[k].append(interpreter.get_tensor(d["index"]).copy())
    return [np.stack(r) for r in results]


def output_order(model: bytes) -> list[int]:
    """Position in LiteRT's output details of each of the model's outputs (same tensors)."""
    from ai_edge_litert.interpreter import Interpreter
    from edgekit.tflite.reader import read_model

    indices = [d["index"] for d in Interpreter(model_content=model).get_output_details()]
    return [indices.index(t) for t in read_model(model).outputs]


# ---- models ------------------------------------------------------------------------------


def _keras():
    import tf_keras as keras

    keras.utils.set_random_seed(0)
    return keras


def se_block():
    """Squeeze-excite shape: MUL by constants, MEAN keep_dims, LOGISTIC, broadcast MUL, PAD, CONCAT."""
    import tensorflow as tf

    keras = _keras()
    layers = keras.layers
    x = keras.Input(shape=(6, 5, 3), batch_size=1)
    t = layers.Lambda(lambda v: v * tf.constant([0.5, -1.5, 2.0]) + 0.25, name="scale")(x)
    s = layers.Lambda(lambda v: tf.reduce_mean(v, axis=[1, 2], keepdims=True), name="squeeze")(t)
    s = layers.Activation("sigmoid", name="gate")(s)
    m = layers.Multiply(name="excite")([t, s])
    p = layers.ZeroPadding2D(((1, 0), (2, 1)), name="pad_a")(m)
    rows = tf.constant(np.linspace(-2.0, 3.0, 6, dtype=np.float32).reshape(1, 6, 1, 1))
    q = layers.Lambda(lambda v: v * rows, name="rows")(x)
    q = layers.ZeroPadding2D(((0, 1), (1, 2)), name="pad_b")(q)
    c = layers.Concatenate(axis=-1, name="concat")([p, q])
    pooled = layers.GlobalAveragePooling2D(name="pool")(c)
    return keras.Model(x, [pooled, c, m, s])


def elementwise_mix():
    """Same-shape and (H,W,1) broadcast MUL with fused RELU/RELU6, MEAN over one axis,
    CONCAT off the last axis with a requantized input, PAD on H and C, PADV2."""
    import tensorflow as tf

    keras = _keras()
    layers = keras.layers
    x = keras.Input(shape=(5, 4, 3), batch_size=1)
    square = layers.Multiply(name="square")([x, x])
    channel_mean = layers.Lambda(lambda v: tf.reduce_mean(v, axis=-1, keepdims=True), name="cmean")(x)
    gated = layers.ReLU(name="relu")(layers.Multiply(name="gated")([square, channel_mean]))
    scaled = layers.ReLU(max_value=6.0, name="relu6")(layers.Lambda(lambda v: v * 2.5, name="scaled")(x))
    wide = layers.Lambda(lambda v: v * 8.0, name="wide")(x)
    cat = layers.Concatenate(axis=2, name="concat_w")([gated, scaled, wide])
    padded = layers.Lambda(lambda v: tf.pad(v, [[0, 0], [2, 0], [0, 0], [1, 1]]), name="pad_hc")(cat)
    col_mean = layers.Lambda(lambda v: tf.reduce_mean(v, axis=[1]), name="hmean")(padded)
    padv2 = layers.Lambda(
        lambda v: tf.pad(v, [[0, 0], [0, 1], [1, 0], [0, 0]], constant_values=0.75), name="padv2"
    )(x)
    last_mean = layers.Lambda(lambda v: tf.reduce_mean(v, axis=[1, 3], keepdims=False), name="mean13")(padv2)
    return keras.Model(x, [col_mean, padded, gated, scaled, last_mean, padv2])


def requantize_concat():
    """The model input feeds two concatenations of very different ranges: the converter gives
    one of them an int8 -> int8 QUANTIZE (new scale and zero point) in front."""
    keras = _keras()
    layers = keras.layers
    x = keras.Input(shape=(4, 3), batch_size=1)
    wide = layers.Lambda(lambda v: v * 8.0 + 1.0, name="wide")(x)
    narrow = layers.Lambda(lambda v: v * 0.1, name="narrow")(x)
    first = layers.Concatenate(axis=1, name="concat_rows")([x, wide])
    second = layers.Concatenate(axis=-1, name="concat_cols")([narrow, x])
    return keras.Model(x, [first, second])


def mobile_block():
    """A MobileNet-style block around the operators of this file and the compiler's: PAD before a
    stride-2 VALID depthwise conv (a pad SAME cannot express, so the converter keeps it), 1x1
    convs with RELU6, a squeeze-excite gate (MEAN, LOGISTIC, MUL), global MEAN, dense head."""
    import tensorflow as tf

    keras = _keras()
    layers = keras.layers
    x = keras.Input(shape=(9, 9, 4), batch_size=1)
    h = layers.Conv2D(8, 1, activation="relu6", name="expand")(x)
    h = layers.ZeroPadding2D(((2, 1), (1, 0)), name="pad")(h)
    h = layers.DepthwiseConv2D(3, strides=2, padding="valid", activation="relu6", name="dw")(h)
    gate = layers.Lambda(lambda v: tf.reduce_mean(v, axis=[1, 2], keepdims=True), name="squeeze")(h)
    gate = layers.Conv2D(8, 1, activation="sigmoid", name="excite")(gate)
    h = layers.Multiply(name="scale")([h, gate])
    h = layers.Conv2D(6, 1, name="project")(h)
    pooled = layers.GlobalAveragePooling2D(name="pool")(h)
    return keras.Model(x, [layers.Dense(3, name="head")(pooled), h])


def logistic_sweep():
    """LOGISTIC on input scales and zero points of several sizes and signs."""
    keras = _keras()
    layers = keras.layers
    x = keras.Input(shape=(256,), batch_size=1)
    outs = [layers.Activation("sigmoid", name="sig")(x)]
    for k, c in enumerate((0.05, -3.0, 9.0, 40.0)):
        outs.append(layers.Activation("sigmoid", name=f"sig{k}")(layers.Lambda(lambda v, c=c: v * c)(x)))
    return keras.Model(x, outs)


def dense_head():
    """A small dense head, converted with float input and output: QUANTIZE and DEQUANTIZE around it."""
    keras = _keras()
    layers = keras.layers
    x = keras.Input(shape=(8,), batch_size=1)
    y = layers.Dense(6, name="dense")(x)
    return keras.Model(x, [layers.Activation("sigmoid", name="sig")(y), y])


def _weights(model, seed: int = 0):
    rng = np.random.default_rng(seed)
    model.set_weights([rng.standard_normal(w.shape).astype(np.float32) * 0.5 for w in model.get_weights()])
    return model


def to_tflite_float_io(keras_model, calibration: np.ndarray) -> bytes:
    """Full-integer int8 internals with float32 input and output (QUANTIZE / DEQUANTIZE at the edges)."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([s[None, ...]] for s in calibration)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    return bytes(converter.convert())


# calibration ranges are skewed on purpose: they give nonzero (and negative) zero points
MODELS = {
    "se_block": (se_block, (6, 5, 3), (-0.5, 2.0)),
    "elementwise_mix": (elementwise_mix, (5, 4, 3), (-1.5, 0.5)),
    "logistic_sweep": (logistic_sweep, (256,), (-0.3, 1.7)),
    "requantize_concat": (requantize_concat, (4, 3), (-1.5, 0.5)),
    "mobile_block": (mobile_block, (9, 9, 4), (-1.0, 1.5)),
}

_CACHE: dict = {}


def converted(key: str, quantize: str) -> bytes:
    if (key, quantize) not in _CACHE:
        build, shape, (lo, hi) = MODELS[key]
        calibration = np.random.default_rng(7).uniform(lo, hi, size=(24, *shape)).astype(np.float32)
        _CACHE[(key, quantize)] = to_tflite(build(), quantize=quantize, calibration=calibration)
    return _CACHE[(key, quantize)]


def int8_inputs(shape, seed: int) -> np.ndarray:
    """Uniform over the whole int8 range (so intermediate results saturate), plus the extremes."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, size=(SAMPLES, 1, *shape), dtype=np.int8)
    x[0], x[1] = -128, 127
    return x


def assert_bit_exact(model: bytes, bundle: HostBundle, inputs: list[np.ndarray]):
    ours = bundle.run(inputs)
    reference = tflm_run(model, inputs)
    ops = bundle.bundle.ops
    for k, (got, want) in enumerate(zip(ours, reference)):
        want = want.reshape(got.shape)
        bad = np.argwhere(got != want)
        assert bad.size == 0, (
            f"output {k} ({bundle.bundle.outputs[k].name}) differs from TFLM at {len(bad)} places, "
            f"first {bad[0].tolist()}: {got[tuple(bad[0])]} vs {want[tuple(bad[0])]} (ops {ops})"
        )


# ---- tests: int8 bit-exact against TFLM --------------------------------------------------


@needs_cc
@pytest.mark.parametrize("key", sorted(MODELS))
def test_int8_bit_exact_with_tflm(key, tmp_path):
    model = converted(key, "int8")
    bundle = HostBundle(model, tmp_path)
    shape = MODELS[key][1]
    inputs = int8_inputs(shape, seed=len(key))
    if key == "logistic_sweep":
        inputs[2] = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)  # every int8 value once
    assert_bit_exact(model, bundle, [inputs])


def test_models_hold_the_ops_under_test():
    """The converter really produced the operators (and variants) these tests are about."""
    from edgekit.tflite.reader import read_model

    def ops(key, quantize="int8"):
        return [(op.opcode, op.options) for op in read_model(converted(key, quantize)).operators]

    se = ops("se_block")
    names = [o for o, _ in se]
    for op in ("MUL", "MEAN", "LOGISTIC", "PAD", "CONCATENATION"):
        assert op in names
    assert {bool(opt.get("keep_dims")) for o, opt in se if o == "MEAN"} == {True, False}
    mix = ops("elementwise_mix")
    acts = {opt.get("fused_activation_function") for o, opt in mix if o == "MUL"}
    assert {"RELU", "RELU6"} <= acts, acts
    assert "PADV2" in [o for o, _ in mix]
    assert [opt.get("axis") for o, opt in mix if o == "CONCATENATION"] == [2]
    assert "QUANTIZE" in [o for o, _ in ops("requantize_concat")]
    mobile = [o for o, _ in ops("mobile_block")]
    for op in ("PAD", "DEPTHWISE_CONV_2D", "CONV_2D", "MEAN", "LOGISTIC", "MUL", "FULLY_CONNECTED"):
        assert op in mobile, mobile


# ---- tests: float32 within 1e-5 of LiteRT -------------------------------------------------


def float_inputs(shape) -> np.ndarray:
    # wide enough to reach LOGISTIC's cutoffs (below -9, above 16.6) through the scaled branches
    return np.random.default_rng(3).uniform(-20.0, 20.0, size=(40, 1, *shape)).astype(np.float32)


@needs_cc
@pytest.mark.parametrize("key", sorted(MODELS))
def test_float32_close_to_litert(key, tmp_path):
    """Within 1e-5 relative of LiteRT. A MEAN whose terms cancel can come out much smaller than
    its terms, and LiteRT sums in another order, so the error is taken relative to the largest
    magnitude of the output tensor as well as elementwise."""
    model = converted(key, "none")
    bundle = HostBundle(model, tmp_path)
    x = float_inputs(MODELS[key][1])
    ours = bundle.run([x])
    reference = litert_run(model, [x])
    for k, pos in enumerate(output_order(model)):
        got, want = ours[k], reference[pos].reshape(ours[k].shape)
        np.testing.assert_allclose(
            got, want, rtol=FLOAT_RTOL, atol=FLOAT_RTOL * float(np.abs(want).max()), err_msg=f"output {k}"
        )


@needs_cc
@pytest.mark.parametrize("key", sorted(MODELS))
def test_float32_bit_identical_to_tflm_reference(key, tmp_path):
    """The float kernels accumulate in TFLM's order and use its formulas: same bits as TFLM's
    float reference kernels (on this host's libm)."""
    model = converted(key, "none")
    bundle = HostBundle(model, tmp_path)
    x = float_inputs(MODELS[key][1])
    for k, (got, want) in enumerate(zip(bundle.run([x]), tflm_run(model, [x]))):
        np.testing.assert_array_equal(got.view(np.uint32), want.reshape(got.shape).view(np.uint32),
                                      err_msg=f"output {k}")  # fmt: skip


# ---- QUANTIZE / DEQUANTIZE ----------------------------------------------------------------


@needs_cc
def test_float_io_quantize_dequantize_bit_exact(tmp_path):
    """float -> int8 QUANTIZE at the input and int8 -> float DEQUANTIZE at the outputs equal TFLM's
    bit for bit, also on rounding ties, values far beyond the int8 range and signed zeros."""
    from edgekit.tflite.reader import read_model

    rng = np.random.default_rng(5)
    calibration = rng.uniform(-2.5, 0.7, size=(24, 8)).astype(np.float32)
    model = to_tflite_float_io(_weights(dense_head()), calibration)
    parsed = read_model(model)
    opcodes = [op.opcode for op in parsed.operators]
    assert opcodes[0] == "QUANTIZE" and "DEQUANTIZE" in opcodes, opcodes
    q = parsed.tensors[parsed.operators[0].outputs[0]].quantization
    scale, zero_point = float(q.scale[0]), int(q.zero_point[0])
    assert zero_point != 0
    ties = ((np.arange(-140, 140) + 0.5 - zero_point) * scale).astype(np.float32)
    far = np.float32(2.0**30 * scale)  # beyond int8 after scaling, still inside int32
    special = np.array([0.0, -0.0, scale / 2, -scale / 2, far, -far, 1e5, -1e5], np.float32)
    values = np.concatenate([ties, special, rng.uniform(-4, 4, size=8 * 60).astype(np.float32)])
    values = np.resize(values, (len(values) + 7) // 8 * 8).reshape(-1, 1, 8)
    bundle = HostBundle(model, tmp_path)
    ours = bundle.run([values])
    reference = tflm_run(model, [values])
    for k, (got, want) in enumerate(zip(ours, reference)):
        np.testing.assert_array_equal(got.view(np.uint32), want.reshape(got.shape).view(np.uint32),
                                      err_msg=f"output {k}")  # fmt: skip

    # Past int32, TFLM's float -> int32 cast is undefined (x86 yields INT32_MIN, so +1e30 comes out
    # as -128); the kernel saturates instead: such inputs act like any other too-large input.
    huge = np.array([[1e30] * 8, [3.4e38] * 8, [np.inf] * 8, [-1e30] * 8, [-np.inf] * 8], np.float32)
    capped = np.array([[1e5] * 8] * 3 + [[-1e5] * 8] * 2, np.float32)
    for got, want in zip(bundle.run([huge[:, None]]), bundle.run([capped[:, None]])):
        np.testing.assert_array_equal(got, want)


@needs_cc
def test_concatenation_requantizes_inputs_of_another_scale(tmp_path):
    """Drop the converter's int8 -> int8 QUANTIZE and let CONCATENATION take the unrequantized
    input: the compiled graph still equals TFLM running the original model, bit for bit."""
    from edgekit.aot.compiler import compile_graph
    from edgekit.aot.graph import graph_from_model
    from edgekit.tflite.reader import read_model

    model = converted("requantize_concat", "int8")
    graph = graph_from_model(read_model(model), "net")
    (quantize,) = [n for n in graph.nodes if n.opcode == "QUANTIZE"]
    source, requantized = quantize.inputs[0], quantize.outputs[0]
    assert graph.tensors[source].zero_point[0] != graph.tensors[requantized].zero_point[0]
    graph.nodes.remove(quantize)
    for node in graph.nodes:
        node.inputs = tuple(source if i == requantized else i for i in node.inputs)
    del graph.tensors[requantized]
    bundle = compile_graph(graph, source_label="requantize_concat without QUANTIZE")
    assert "QUANTIZE" not in bundle.ops and "ek_concat_requantize_s8(" in bundle.source
    assert_bit_exact(model, HostBundle(bundle, tmp_path), [int8_inputs((4, 3), seed=13)])


# ---- compile-time arithmetic --------------------------------------------------------------


def test_logistic_table_matches_tflm_on_every_input(tmp_path):
    """The compile-time port of TFLM's integer logistic gives TFLM's answer for all 256 inputs,
    for each input scale / zero point of the sweep model (no C compiler involved)."""
    from tflite_micro.python.tflite_micro import runtime

    from edgekit.aot.compiler import TFLM_SINGLE_ROUNDING
    from edgekit.aot.ops.logistic import logistic_table
    from edgekit.tflite.reader import read_model

    model = converted("logistic_sweep", "int8")
    parsed = read_model(model)
    interpreter = runtime.Interpreter.from_bytes(model)
    interpreter.set_input(np.arange(-128, 128, dtype=np.int8).reshape(1, 256), 0)
    interpreter.invoke()
    checked = set()
    out_pos = {t: k for k, t in enumerate(parsed.outputs)}
    for op in parsed.operators:
        if op.opcode != "LOGISTIC":
            continue
        q = parsed.tensors[op.inputs[0]].quantization
        scale, zp = float(q.scale[0]), int(q.zero_point[0])
        if op.inputs[0] != parsed.inputs[0]:
            continue  # only the model input takes every int8 value
        table = logistic_table(scale, zp, TFLM_SINGLE_ROUNDING)
        got = np.array(interpreter.get_output(out_pos[op.outputs[0]])).reshape(-1)
        np.testing.assert_array_equal(np.array(table, np.int8), got)
        checked.add((scale, zp))
    assert checked


def test_mean_multiplier_keeps_the_ratio():
    """1/count folded into (multiplier, shift) still represents s_in / (s_out * count) to ~30 bits
    and stays in MultiplyByQuantizedMultiplier's domain (exactness: the MEAN cases against TFLM)."""
    from edgekit.aot.ops.mean import mean_multiplier
    from edgekit.aot.quant import quantize_multiplier

    for real in (0.37, 1.0, 1.9, 0.0123):
        for count in (1, 2, 3, 30, 49, 1000, 2**20 + 7):
            m, s = mean_multiplier(*quantize_multiplier(real), count)
            assert 0 <= m < 2**31 and s >= -31
            approx = m * 2.0 ** (s - 31)
            assert math.isclose(approx, real / count, rel_tol=2**-28)


def test_pad_folding_reproduces_numpy_pad():
    """fold_padding's four loops, run in numpy as the kernel runs them, equal np.pad on random shapes."""
    from edgekit.aot.ops.pad import fold_padding

    rng = np.random.default_rng(1)
    for _ in range(300):
        rank = int(rng.integers(1, 6))
        shape = tuple(int(n) for n in rng.integers(1, 4, size=rank))
        pads = rng.integers(0, 3, size=(rank, 2)) * (rng.random((rank, 1)) < 0.5)
        folded = fold_padding(shape, pads)
        if folded is None:
            assert np.count_nonzero(pads.sum(axis=1)) > 4 or rank > 4
            continue
        in_dims, left, out_dims = folded
        x = rng.integers(0, 100, size=shape)
        got = np.full(out_dims, -1)
        got[tuple(slice(lo, lo + n) for n, lo in zip(in_dims, left))] = x.reshape(in_dims)
        np.testing.assert_array_equal(got.reshape(-1), np.pad(x, pads, constant_values=-1).reshape(-1))


def test_mean_split_reproduces_numpy_mean():
    """split_reduction's kept/reduced loops, run as the kernel runs them, equal np.sum over the axes."""
    from edgekit.aot.ops.mean import resolve_axes, split_reduction

    rng = np.random.default_rng(2)
    for _ in range(300):
        rank = int(rng.integers(1, 6))
        shape = tuple(int(n) for n in rng.integers(1, 5, size=rank))
        axes = resolve_axes(rng.choice(np.arange(-rank, rank), size=int(rng.integers(1, rank + 1))), rank)
        split = split_reduction(shape, axes)
        if split is None:
            continue
        kept, ks, red, rs = split
        x = rng.integers(-50, 50, size=shape).reshape(-1)
        out = [
            sum(x[a0 * ks[0] + a1 * ks[1] + a2 * ks[2] + b0 * rs[0] + b1 * rs[1] + b2 * rs[2]]
                for b0 in range(red[0]) for b1 in range(red[1]) for b2 in range(red[2]))
            for a0 in range(kept[0]) for a1 in range(kept[1]) for a2 in range(kept[2])
        ]  # fmt: skip
        np.testing.assert_array_equal(out, x.reshape(shape).sum(axis=tuple(axes)).reshape(-1))


# ---- cross compilation -------------------------------------------------------------------


@pytest.mark.skipif(ARM_CC is None, reason="arm-none-eabi-gcc not installed")
@pytest.mark.parametrize("quantize", ["int8", "none"])
def test_bundles_compile_for_cortex_m4(quantize, tmp_path):
    from edgekit.aot.compiler import compile_model

    for key in ("se_block", "elementwise_mix"):
        bundle = compile_model(converted(key, quantize), name=key)
        bundle.write(tmp_path)
        subprocess.run(
            [ARM_CC, "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-mcpu=cortex-m4", "-mthumb",
             "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16", "-c", str(tmp_path / f"{key}.c"),
             "-o", str(tmp_path / f"{key}.o")],
            check=True, capture_output=True, text=True,
        )  # fmt: skip


# ---- operator-level models with chosen quantization ---------------------------------------
# Written directly with the flatbuffer writer of test_aot_builder.py: exact scales (powers of
# two that put MultiplyByQuantizedMultiplier on rounding ties), extreme zero points, ranks and
# broadcast patterns a calibrated converter does not produce.

from tests import test_aot_builder as _builder  # noqa: E402


def random_feed(shapes_dtypes, seed: int, count: int = SAMPLES) -> list[np.ndarray]:
    """One batch per input: int8 over the whole range (first samples all -128 / all 127),
    float32 uniform in [-3, 3)."""
    rng = np.random.default_rng(seed)
    feed = []
    for shape, dtype in shapes_dtypes:
        if dtype == "int8":
            x = rng.integers(-128, 128, size=(count, *shape), dtype=np.int8)
            x[0], x[1] = -128, 127
        else:
            x = rng.uniform(-3, 3, size=(count, *shape)).astype(np.float32)
        feed.append(x)
    return feed


def check_against_tflm(
    model: bytes, tmp_path: Path, seed: int = 0, feed=None, litert: bool = True
) -> HostBundle:
    """int8: bit-exact with TFLM. float32: bit-identical to TFLM's float kernels and (unless
    `litert` is False) within 1e-5 of LiteRT, relative to the output's largest magnitude."""
    bundle = HostBundle(model, tmp_path)
    if feed is None:
        feed = random_feed([(t.shape, t.dtype) for t in bundle.bundle.inputs], seed)
    if bundle.bundle.outputs[0].dtype == "int8":
        assert_bit_exact(model, bundle, feed)
        return bundle
    ours = bundle.run(feed)
    for k, (got, want) in enumerate(zip(ours, tflm_run(model, feed))):
        np.testing.assert_array_equal(got.view(np.uint32), want.reshape(got.shape).view(np.uint32),
                                      err_msg=f"output {k} vs TFLM")  # fmt: skip
    for got, want in zip(ours, litert_run(model, feed) if litert else []):
        want = want.reshape(got.shape)
        np.testing.assert_allclose(got, want, rtol=FLOAT_RTOL, atol=FLOAT_RTOL * float(np.abs(want).max()))
    return bundle


def _q(b, shape, scale_zp, dtype="int8", **kw):
    if dtype == "float32":
        return b.tensor(shape, "float32", **kw)
    return b.tensor(shape, scale=scale_zp[0], zero_point=scale_zp[1], **kw)


def mul_model(a_shape, b_shape, qa=(0.05, 0), qb=(0.05, 0), qy=(0.05, 0), act="NONE", dtype="int8",
              const_b=False):  # fmt: skip
    b = _builder.ModelBuilder()
    y_shape = tuple(np.broadcast_shapes(a_shape, b_shape))
    a = _q(b, a_shape, qa, dtype)
    data = None
    if const_b:
        rng = np.random.default_rng(1)
        data = rng.integers(-128, 128, b_shape) if dtype == "int8" else rng.standard_normal(b_shape)
    bt = _q(b, b_shape, qb, dtype, data=data)
    y = _q(b, y_shape, qy, dtype)
    b.op("MUL", [a, bt], [y], fused_activation_function=act)
    return b.build([a] if const_b else [a, bt], [y])


MUL_CASES = {
    # s_a * s_b / s_y = 1/2 exactly: every odd product lands on a rounding tie
    "ties-half": dict(a_shape=(1, 4, 6), b_shape=(1, 4, 6), qa=(0.5, -3), qb=(0.25, 7), qy=(0.25, 0)),
    "ties-quarter-extreme-zero-points": dict(
        a_shape=(2, 3, 5), b_shape=(2, 3, 5), qa=(0.5, -128), qb=(0.5, 127), qy=(1.0, -5)),
    "left-shift-saturating": dict(a_shape=(1, 3, 7), b_shape=(1, 3, 7), qa=(0.5, 10), qb=(0.5, -20),
                                  qy=(0.01, 3)),
    "relu-saturating": dict(a_shape=(1, 8, 3), b_shape=(1, 8, 3), qa=(0.1, 0), qb=(0.2, -9),
                            qy=(0.001, -100), act="RELU"),
    "relu6-broadcast-both-ways": dict(a_shape=(1, 4, 1, 3), b_shape=(1, 1, 5, 3), qa=(0.05, 11),
                                      qb=(0.05, -40), qy=(0.02, -128), act="RELU6"),
    "scalar-constant": dict(a_shape=(2, 3, 4, 5), b_shape=(1,), qa=(0.02, -7), qb=(0.003, 77),
                            qy=(0.01, 2), const_b=True),
    "rank5-broadcast": dict(a_shape=(2, 1, 3, 1, 4), b_shape=(1, 5, 1, 6, 1), qa=(0.07, 1),
                            qb=(0.03, -2), qy=(0.04, 9)),
    "constant-row": dict(a_shape=(1, 5, 4, 3), b_shape=(1, 1, 4, 1), qa=(0.04, -60), qb=(0.01, 20),
                         qy=(0.03, 40), const_b=True),
    # products whose high half passes -2^15: GCC 12's AVX2 vectorizer once narrowed it to 16 bits
    "high-half-beyond-16-bits-relu6": dict(a_shape=(1,), b_shape=(5, 2, 3, 3), qa=(0.06089317, 120),
                                           qb=(0.28040156, -99), qy=(0.45564932, 90), act="RELU6"),
    "float-broadcast-relu6": dict(a_shape=(1, 4, 1, 3), b_shape=(1, 1, 5, 3), act="RELU6", dtype="float32"),
    "float-constant": dict(a_shape=(2, 3, 4), b_shape=(3, 1), dtype="float32", const_b=True),
}  # fmt: skip


@needs_cc
@pytest.mark.parametrize("case", sorted(MUL_CASES))
def test_mul_cases(case, tmp_path):
    check_against_tflm(mul_model(**MUL_CASES[case]), tmp_path, seed=len(case))


def concat_model(shapes, axis, q=(0.04, -17), dtype="int8", const_index=None):
    b = _builder.ModelBuilder()
    rng = np.random.default_rng(2)
    ins = []
    for k, shape in enumerate(shapes):
        data = None
        if k == const_index:
            data = rng.integers(-128, 128, shape) if dtype == "int8" else rng.standard_normal(shape)
        ins.append(_q(b, shape, q, dtype, data=data))
    rank = len(shapes[0])
    out_shape = list(shapes[0])
    out_shape[axis % rank] = sum(s[axis % rank] for s in shapes)
    y = _q(b, tuple(out_shape), q, dtype)
    b.op("CONCATENATION", ins, [y], axis=axis, fused_activation_function="NONE")
    return b.build([t for k, t in enumerate(ins) if k != const_index], [y])


CONCAT_CASES = {
    "batch-axis": dict(shapes=[(2, 3, 4), (1, 3, 4)], axis=0),
    "negative-axis-three-inputs": dict(shapes=[(1, 2, 3, 1), (1, 2, 3, 4), (1, 2, 3, 2)], axis=-1),
    "middle-axis-constant-input": dict(shapes=[(2, 1, 5), (2, 3, 5), (2, 2, 5)], axis=1, const_index=1),
    "rank1": dict(shapes=[(3,), (5,)], axis=0),
    "float-axis2": dict(shapes=[(1, 3, 2, 2), (1, 3, 1, 2)], axis=2, dtype="float32"),
}


@needs_cc
@pytest.mark.parametrize("case", sorted(CONCAT_CASES))
def test_concatenation_cases(case, tmp_path):
    check_against_tflm(concat_model(**CONCAT_CASES[case]), tmp_path, seed=len(case))


def pad_model(shape, paddings, q=(0.1, -128), dtype="int8", value=None):
    b = _builder.ModelBuilder()
    x = _q(b, shape, q, dtype)
    p = b.tensor((len(shape), 2), "int32", data=np.array(paddings))
    out_shape = tuple(n + lo + hi for n, (lo, hi) in zip(shape, paddings))
    y = _q(b, out_shape, q, dtype)
    if value is None:
        b.op("PAD", [x, p], [y])
    else:
        v = _q(b, (1,), q, dtype, data=np.array([value]))
        b.op("PADV2", [x, p, v], [y])
    return b.build([x], [y])


PAD_CASES = {
    "all-four-dims-zero-point-min": dict(shape=(1, 2, 3, 2), paddings=[[1, 0], [0, 2], [1, 1], [2, 0]]),
    "positive-zero-point": dict(shape=(2, 3, 3, 1), paddings=[[0, 0], [1, 1], [1, 1], [0, 0]],
                                q=(0.02, 93)),
    "rank2": dict(shape=(3, 4), paddings=[[2, 1], [0, 3]], q=(0.5, 7)),
    "rank5-folds": dict(shape=(2, 1, 3, 4, 2), paddings=[[1, 0], [0, 0], [0, 2], [0, 0], [1, 1]]),
    "nothing-to-pad": dict(shape=(1, 3, 4), paddings=[[0, 0], [0, 0], [0, 0]], q=(0.3, -1)),
    "padv2-int8": dict(shape=(1, 3, 2, 2), paddings=[[0, 0], [2, 1], [0, 1], [0, 0]], value=-77),
    "float-pad": dict(shape=(1, 2, 3, 2), paddings=[[0, 0], [1, 2], [2, 1], [1, 0]], dtype="float32"),
    "float-padv2": dict(shape=(2, 3), paddings=[[1, 1], [0, 2]], dtype="float32", value=-1.5),
}  # fmt: skip


@needs_cc
@pytest.mark.parametrize("case", sorted(PAD_CASES))
def test_pad_cases(case, tmp_path):
    check_against_tflm(pad_model(**PAD_CASES[case]), tmp_path, seed=len(case))


def mean_model(shape, axes, keep_dims, q_in=(0.05, -128), q_out=(0.02, 5), dtype="int8"):
    b = _builder.ModelBuilder()
    x = _q(b, shape, q_in, dtype)
    ax = b.tensor((len(axes),), "int32", data=np.array(axes))
    rank = len(shape)
    reduced = {a % rank for a in axes}
    out_shape = tuple(1 if d in reduced else n for d, n in enumerate(shape) if keep_dims or d not in reduced)
    y = _q(b, out_shape, q_out, dtype)
    b.op("MEAN", [x, ax], [y], keep_dims=keep_dims)
    return b.build([x], [y])


MEAN_CASES = {
    "spatial-7x7-ratio-2.5": dict(shape=(1, 7, 7, 3), axes=[1, 2], keep_dims=False),
    "all-axes-batch2": dict(shape=(2, 4, 4, 3), axes=[0, 1, 2, 3], keep_dims=True, q_in=(0.1, 20),
                            q_out=(0.1, 20)),
    "negative-and-duplicate-axes": dict(shape=(1, 5, 3, 6), axes=[-1, 3, 1], keep_dims=True,
                                        q_in=(0.02, 60), q_out=(0.03, -60)),
    "count-4096": dict(shape=(1, 64, 64, 2), axes=[1, 2], keep_dims=True, q_in=(0.04, -3), q_out=(0.04, -3)),
    "tiny-ratio": dict(shape=(1, 6, 5, 4), axes=[2], keep_dims=False, q_in=(0.001, 100), q_out=(0.5, -1)),
    "huge-ratio-saturating": dict(shape=(1, 3, 3, 5), axes=[1, 2], keep_dims=False, q_in=(1.0, 1),
                                  q_out=(0.004, 0)),
    "outer-and-inner-axes": dict(shape=(3, 4, 5), axes=[0, 2], keep_dims=False, q_in=(0.07, -9),
                                 q_out=(0.05, 11)),
    "float-spatial-keep": dict(shape=(1, 5, 6, 3), axes=[1, 2], keep_dims=True, dtype="float32"),
    "float-last-axis": dict(shape=(2, 3, 7), axes=[-1], keep_dims=False, dtype="float32"),
}  # fmt: skip


@needs_cc
@pytest.mark.parametrize("case", sorted(MEAN_CASES))
def test_mean_cases(case, tmp_path):
    check_against_tflm(mean_model(**MEAN_CASES[case]), tmp_path, seed=len(case))


def unary_model(opcode, shape, q_in, q_out, in_dtype="int8", out_dtype="int8"):
    b = _builder.ModelBuilder()
    x = _q(b, shape, q_in, in_dtype)
    y = _q(b, shape, q_out, out_dtype)
    b.op(opcode, [x], [y])
    return b.build([x], [y])


REQUANTIZE_CASES = {
    "ratio-2-saturating": ((0.1, -10), (0.05, 20)),
    "ratio-half-ties": ((0.05, 3), (0.1, -7)),
    "odd-ratio-extreme-zero-points": ((0.0173, -128), (0.39, 127)),
    "same-scale-new-zero-point": ((0.02, 5), (0.02, -50)),
}


@needs_cc
@pytest.mark.parametrize("case", sorted(REQUANTIZE_CASES))
def test_quantize_int8_to_int8_cases(case, tmp_path):
    q_in, q_out = REQUANTIZE_CASES[case]
    check_against_tflm(unary_model("QUANTIZE", (1, 16, 16), q_in, q_out), tmp_path, seed=len(case))


@needs_cc
@pytest.mark.parametrize("case", [
    ("uint8", (0.02, 128), "int8", (0.02, 0)),  # the shift of 128 TFLM special-cases
    ("uint8", (0.05, 200), "int8", (0.03, -100)),
    ("int8", (0.1, -7), "uint8", (0.07, 10)),
])  # fmt: skip
def test_quantize_uint8_edges(case, tmp_path):
    in_dtype, q_in, out_dtype, q_out = case
    b = _builder.ModelBuilder()
    x = b.tensor((1, 256), in_dtype, scale=q_in[0], zero_point=q_in[1])
    y = b.tensor((1, 256), out_dtype, scale=q_out[0], zero_point=q_out[1])
    b.op("QUANTIZE", [x], [y])
    model = b.build([x], [y])
    every = np.arange(256, dtype=np.int64) - (128 if in_dtype == "int8" else 0)
    feed = [every.astype(in_dtype).reshape(1, 1, 256)]
    bundle = HostBundle(model, tmp_path)
    np.testing.assert_array_equal(bundle.run(feed)[0].reshape(-1), tflm_run(model, feed)[0].reshape(-1))


@needs_cc
def test_uint8_io_model_bit_exact(tmp_path):
    """A converter model with uint8 input and output: QUANTIZE uint8 -> int8 in, int8 -> uint8 out."""
    import tensorflow as tf

    from edgekit.tflite.reader import read_model

    keras_model = _weights(dense_head())
    calibration = np.random.default_rng(8).uniform(-1, 2, size=(24, 8)).astype(np.float32)
    converter = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([s[None, ...]] for s in calibration)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.uint8
    converter.inference_output_type = tf.uint8
    model = bytes(converter.convert())
    opcodes = [op.opcode for op in read_model(model).operators]
    assert opcodes[0] == "QUANTIZE" and opcodes[-1] == "QUANTIZE", opcodes
    bundle = HostBundle(model, tmp_path)
    x = np.random.default_rng(9).integers(0, 256, size=(SAMPLES, 1, 8)).astype(np.uint8)
    for got, want in zip(bundle.run([x]), tflm_run(model, [x])):
        np.testing.assert_array_equal(got, want.reshape(got.shape))


@needs_cc
@pytest.mark.parametrize("q", [(0.5, 0), (0.1, -3), (0.0123, 120)])
def test_quantize_float_ties_and_dequantize(q, tmp_path):
    """float -> int8 on exact and near rounding ties, then int8 -> float back: both bit-exact."""
    scale, zp = q
    ties = ((np.arange(-150, 150) + 0.5 - zp) * scale).astype(np.float32)
    feed = [np.resize(ties, (6, 1, 60)).astype(np.float32)]
    check_against_tflm(unary_model("QUANTIZE", (1, 60), None, q, "float32", "int8"), tmp_path, feed=feed)
    codes = [np.arange(-128, 128, dtype=np.int8).reshape(1, 1, 256)]
    check_against_tflm(unary_model("DEQUANTIZE", (1, 256), q, None, "int8", "float32"), tmp_path / "d",
                       feed=codes)  # fmt: skip


@needs_cc
@pytest.mark.parametrize("q_in", [(0.001, 0), (0.01, -128), (0.0625, 37), (0.3, 127), (1.0, -5), (3.0, 0)])
def test_logistic_int8_every_input(q_in, tmp_path):
    """All 256 inputs, for input scales from tiny (never saturates) to huge (radius below 8)."""
    model = unary_model("LOGISTIC", (1, 256), q_in, (1.0 / 256, -128))
    check_against_tflm(model, tmp_path, feed=[np.arange(-128, 128, dtype=np.int8).reshape(1, 1, 256)])


# ---- seeded random sweep over every operator family ----------------------------------------
# Random shapes, strides, dilations, paddings, multipliers, activations and quantization,
# int8 and float32, each compared with TFLM (and LiteRT for float32). The default run covers
# a few configurations per family; the slow run many more.


def _random_case(kind: str, rng) -> tuple[bytes, bool]:
    """(model, compare float32 with LiteRT too) for one random configuration of `kind`."""
    from tests.test_aot_ops import add_model, conv_model, fc_model, pool_model, softmax_model

    def pick(*options):
        return options[int(rng.integers(len(options)))]

    dtype = pick("int8", "int8", "float32")
    if kind in ("conv", "depthwise"):
        k = tuple(int(v) for v in rng.integers(1, 6, 2))
        dilation = tuple(int(v) for v in rng.integers(1, 4, 2)) if rng.random() < 0.4 else (1, 1)
        span = [(kk - 1) * d + 1 for kk, d in zip(k, dilation)]
        depthwise = kind == "depthwise"
        # LiteRT refuses CONV_2D without a bias; TFLM crashes on DEPTHWISE_CONV_2D without one
        bias = depthwise or rng.random() < 0.8
        model = conv_model(
            n=pick(1, 1, 2), h=int(rng.integers(span[0], 14)), w=int(rng.integers(span[1], 14)),
            c=int(rng.integers(1, 7)), oc=int(rng.integers(1, 9)), k=k,
            stride=tuple(int(v) for v in rng.integers(1, 4, 2)), dilation=dilation,
            padding=pick("SAME", "VALID"), act=pick("NONE", "RELU", "RELU6", "RELU_N1_TO_1"),
            depthwise=depthwise, mult=int(rng.integers(1, 4)) if depthwise else 1,
            in_zp=int(rng.integers(-128, 128)), out_zp=int(rng.integers(-128, 128)),
            per_channel=bool(rng.random() < 0.7), saturate=bool(rng.random() < 0.2), bias=bias,
            dtype=dtype, seed=int(rng.integers(1000)),
        )  # fmt: skip
        return model, bias
    if kind == "pool":
        k = tuple(int(v) for v in rng.integers(1, 5, 2))
        return pool_model(
            kind=pick("AVERAGE_POOL_2D", "MAX_POOL_2D"), h=int(rng.integers(k[0], 12)),
            w=int(rng.integers(k[1], 12)), c=int(rng.integers(1, 6)), k=k,
            stride=tuple(int(v) for v in rng.integers(1, 4, 2)), padding=pick("SAME", "VALID"),
            act=pick("NONE", "RELU", "RELU6"), zp=int(rng.integers(-128, 128)), dtype=dtype,
        ), True  # fmt: skip

    if kind == "fully_connected":
        return fc_model(
            batch=int(rng.integers(1, 4)), depth=int(rng.integers(1, 70)), units=int(rng.integers(1, 20)),
            in_zp=int(rng.integers(-128, 128)), out_zp=int(rng.integers(-128, 128)),
            per_channel=bool(rng.random() < 0.5), act=pick("NONE", "RELU", "RELU6"),
            saturate=bool(rng.random() < 0.2), bias=bool(rng.random() < 0.8), dtype=dtype,
            seed=int(rng.integers(1000)),
        ), True  # fmt: skip
    if kind == "softmax":
        rank = int(rng.integers(1, 4))
        return softmax_model(
            shape=tuple(int(v) for v in rng.integers(1, 12, rank)),
            in_scale=float(rng.choice([0.004, 0.02, 0.0625, 0.1, 0.5])) * float(rng.uniform(0.7, 1.4)),
            in_zp=int(rng.integers(-128, 128)), beta=float(rng.choice([1.0, 0.5, 2.5])), dtype=dtype,
        ), True  # fmt: skip

    def qparams():
        return (float(rng.choice([0.5, 0.25, 0.01, 0.03, 0.1])) * float(rng.uniform(0.5, 2.0)),
                int(rng.integers(-128, 128)))  # fmt: skip

    rank = int(rng.integers(1, 5))
    shape = tuple(int(v) for v in rng.integers(1, 6, rank))
    if kind in ("mul", "add"):
        other = tuple(n if rng.random() < 0.6 else 1 for n in shape)[int(rng.integers(0, rank)):]
        a, b = (shape, other) if rng.random() < 0.5 else (other, shape)
        if kind == "add":
            return add_model(
                a_shape=a or (1,), b_shape=b or (1,), scales=tuple(qparams()[0] for _ in range(3)),
                zps=tuple(int(z) for z in rng.integers(-128, 128, 3)), act=pick("NONE", "RELU", "RELU6"),
                dtype=dtype, const_b=bool(rng.random() < 0.3), seed=int(rng.integers(1000)),
            ), True  # fmt: skip
        return mul_model(a or (1,), b or (1,), qparams(), qparams(), qparams(),
                         act=pick("NONE", "RELU", "RELU6"), dtype=dtype,
                         const_b=bool(rng.random() < 0.3)), True  # fmt: skip
    if kind == "mean":
        axes = sorted({int(a) for a in rng.integers(-rank, rank, size=int(rng.integers(1, rank + 1)))})
        return mean_model(shape, axes, bool(rng.random() < 0.5), qparams(), qparams(), dtype), True
    if kind == "pad":
        paddings = [[int(v) for v in rng.integers(0, 3, 2)] for _ in shape]
        value = None if rng.random() < 0.5 else (int(rng.integers(-128, 128)) if dtype == "int8" else 0.5)
        return pad_model(shape, paddings, qparams(), dtype, value), True
    if kind == "concat":
        axis = int(rng.integers(-rank, rank))
        shapes = []
        for _ in range(int(rng.integers(1, 4))):
            s = list(shape)
            s[axis] = int(rng.integers(1, 4))
            shapes.append(tuple(s))
        return concat_model(shapes, axis, qparams(), dtype), True
    raise ValueError(kind)


SWEEP_KINDS = ("conv", "depthwise", "pool", "fully_connected", "add", "softmax", "mul", "mean", "pad",
               "concat")  # fmt: skip


def _sweep(kind: str, count: int, seed: int, tmp_path: Path):
    rng = np.random.default_rng([seed, SWEEP_KINDS.index(kind)])
    for i in range(count):
        model, litert = _random_case(kind, rng)
        try:
            check_against_tflm(model, tmp_path / f"case{i}", seed=i, feed=None, litert=litert)
        except AssertionError as exc:
            raise AssertionError(f"{kind} sweep case {i} (seed {seed}): {exc}") from None


@needs_cc
@pytest.mark.parametrize("kind", SWEEP_KINDS)
def test_random_sweep(kind, tmp_path):
    _sweep(kind, count=6, seed=0, tmp_path=tmp_path)


@pytest.mark.slow
@needs_cc
@pytest.mark.parametrize("kind", SWEEP_KINDS)
def test_random_sweep_long(kind, tmp_path):
    _sweep(kind, count=15, seed=1, tmp_path=tmp_path)


def test_unsupported_variants_are_listed_in_one_error():
    """Variants of these operators the compiler does not take are all named in one error,
    each with its reason, before any code is generated."""
    from edgekit.aot.compiler import UnsupportedOpsError, compile_model

    b = _builder.ModelBuilder()
    x = b.tensor((1, 2, 2, 2, 2, 2), "float32")
    q16 = b.tensor((1, 2, 2, 2, 2, 2), "int16", scale=0.01, zero_point=0)
    b.op("QUANTIZE", [x], [q16])  # float32 -> int16
    paddings = b.tensor((6, 2), "int32", data=np.ones((6, 2), np.int32))
    padded = b.tensor((3, 4, 4, 4, 4, 4), "float32")
    b.op("PAD", [x, paddings], [padded])  # padding in six dimensions
    s = b.tensor((1, 2, 2, 2, 2, 2), scale=0.05, zero_point=0)
    sig = b.tensor((1, 2, 2, 2, 2, 2), scale=1 / 256, zero_point=0)
    b.op("LOGISTIC", [s], [sig])  # int8 output zero point other than -128
    cat = b.tensor((1, 4, 2, 2, 2, 2), "float32")
    b.op("CONCATENATION", [x, x], [cat], axis=1, fused_activation_function="RELU")
    model = b.build([x, s], [q16, padded, sig, cat])
    with pytest.raises(UnsupportedOpsError) as err:
        compile_model(model)
    message = str(err.value)
    for expected in ("QUANTIZE (float32 -> int16)", "PAD (padding in more than 4 dimensions)",
                     "LOGISTIC (int8 output zero point other than -128)",
                     "CONCATENATION (fused activation)", "tflm"):  # fmt: skip
        assert expected in message, message


# ---- on the emulated Cortex-M4 --------------------------------------------------------------

needs_qemu = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("qemu-system-arm", "arm-none-eabi-gcc", "cmake")),
    reason="qemu-system-arm, arm-none-eabi-gcc and cmake are needed for the emulated board",
)


@pytest.mark.slow
@needs_qemu
@pytest.mark.parametrize("key,quantize,target", [
    # se_block holds MUL, MEAN, LOGISTIC, PAD and CONCATENATION, elementwise_mix the broadcast
    # MUL with fused activations; the other models repeat those operators on other shapes, which
    # the host tests above check against TFLM with the same C (these kernels have no DSP code)
    ("se_block", "int8", "mps2-an386"), ("elementwise_mix", "int8", "mps2-an386"),
    ("se_block", "none", "mps2-an500"),
])  # fmt: skip
def test_firmware_on_emulated_cortex_m_matches_tflm(key, quantize, target, tmp_path):
    """The same bundles cross-compiled, flashed to QEMU and driven over the serial protocol:
    every output of every sample equals TFLM's (float32: within 1e-5, newlib's expf is not glibc's)."""
    from edgekit import pipeline

    model = tmp_path / f"{key}.tflite"
    model.write_bytes(converted(key, quantize))
    artifact = pipeline.convert(str(model), target=target, backend="aot", quantization=quantize).artifact
    shape = MODELS[key][1]
    xs = int8_inputs(shape, seed=9)[:8] if quantize == "int8" else float_inputs(shape)[:8]
    reference = tflm_run(model.read_bytes(), [xs])
    with pipeline.open_runner(artifact, target) as runner:
        assert runner.memory_scope == "device", "the bundle must run on the emulated board, not this host"
        for i, x in enumerate(xs):
            got = runner.infer({artifact.inputs[0].name: x})
            for k, spec in enumerate(artifact.outputs):
                want = reference[k][i].reshape(spec.shape)
                if quantize == "int8":
                    np.testing.assert_array_equal(got[spec.name], want, err_msg=f"sample {i} output {k}")
                else:
                    np.testing.assert_allclose(got[spec.name], want, rtol=FLOAT_RTOL,
                                               atol=FLOAT_RTOL * float(np.abs(want).max()))  # fmt: skip


@needs_cc
def test_single_rounding_build_agrees_with_the_python_arithmetic(tmp_path):
    """For TFLM builds with TFLITE_SINGLE_ROUNDING (not the pip interpreter, which rounds twice):
    the C kernels and the compile-time Python arithmetic (used for the LOGISTIC table) implement
    the same MultiplyByQuantizedMultiplier, including on the rounding ties where the two builds
    differ."""
    from edgekit.aot.compiler import compile_model
    from edgekit.aot.ops.logistic import multiply_by_quantized_multiplier
    from edgekit.aot.quant import quantize_multiplier

    qa, qb, qy = (0.5, -128), (0.5, 127), (1.0, -5)  # multiplier 1/4: many ties
    model = mul_model((1, 8, 16), (1, 8, 16), qa, qb, qy)
    host = HostBundle(compile_model(model, name="net", single_rounding=True), tmp_path)
    feed = random_feed([((1, 8, 16), "int8")] * 2, seed=4, count=20)
    got = host.run(feed)[0]
    m, s = quantize_multiplier(qa[0] * qb[0] / qy[0], single_rounding=True)
    products = (feed[0].astype(np.int64) - qa[1]) * (feed[1].astype(np.int64) - qb[1])
    expected = np.vectorize(lambda p: multiply_by_quantized_multiplier(int(p), m, s, True))(products) + qy[1]
    np.testing.assert_array_equal(got, np.clip(expected, -128, 127).reshape(got.shape))
    doubled = np.vectorize(lambda p: multiply_by_quantized_multiplier(int(p), m, s, False))(products) + qy[1]
    assert np.any(np.clip(doubled, -128, 127).reshape(got.shape) != got), "no tie told the builds apart"
