"""A tiny .tflite writer for operator-level tests of the aot compiler, and the references.

Op tests need exact control over quantization (negative zero points, scales
that land on rounding ties, saturating ranges) that a calibrated converter
does not give, so models are written directly with the TFLite flatbuffer
schema's object API (shipped inside TensorFlow; loaded from its file so
TensorFlow itself is not imported). The tests at the bottom check that what
the builder writes is a model both reference interpreters accept.
"""

from __future__ import annotations

import importlib.util
import shutil
from functools import cache
from pathlib import Path

import numpy as np
import pytest

ACTIVATIONS = {"NONE": 0, "RELU": 1, "RELU_N1_TO_1": 2, "RELU6": 3}
PADDINGS = {"SAME": 0, "VALID": 1}
TYPES = {"float32": 0, "int32": 2, "int8": 9, "int64": 4, "int16": 7, "uint8": 3}

# opcode -> options class (None: no options)
OPTIONS = {
    "CONV_2D": "Conv2DOptions",
    "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions",
    "FULLY_CONNECTED": "FullyConnectedOptions",
    "AVERAGE_POOL_2D": "Pool2DOptions",
    "MAX_POOL_2D": "Pool2DOptions",
    "ADD": "AddOptions",
    "RESHAPE": "ReshapeOptions",
    "SOFTMAX": "SoftmaxOptions",
    "TANH": None,
    "FLOOR": None,
    "MUL": "MulOptions",
    "CONCATENATION": "ConcatenationOptions",
    "PAD": "PadOptions",
    "PADV2": "PadV2Options",
    "MEAN": "ReducerOptions",
    "QUANTIZE": "QuantizeOptions",
    "DEQUANTIZE": "DequantizeOptions",
    "LOGISTIC": None,
    "HARD_SWISH": "HardSwishOptions",
}


@cache
def schema():
    """tensorflow/lite/python/schema_py_generated.py, without importing TensorFlow."""
    spec = importlib.util.find_spec("tensorflow")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("tensorflow is not installed (its tflite schema writes the test models)")
    path = Path(spec.submodule_search_locations[0]) / "lite" / "python" / "schema_py_generated.py"
    loader_spec = importlib.util.spec_from_file_location("_tflite_schema", path)
    module = importlib.util.module_from_spec(loader_spec)
    loader_spec.loader.exec_module(module)
    return module


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


class ModelBuilder:
    """Add tensors and operators, then `build(inputs, outputs) -> bytes`."""

    def __init__(self):
        s = schema()
        self.s = s
        self.buffers = [s.BufferT()]  # buffer 0: the empty buffer of activations
        self.tensors = []
        self.operators = []
        self.opcodes: list[str] = []

    def tensor(self, shape, dtype="int8", *, data=None, scale=None, zero_point=None, axis=0, name=None) -> int:
        s = self.s
        t = s.TensorT()
        t.shape = list(shape)
        t.type = TYPES[dtype]
        t.name = name or f"t{len(self.tensors)}"
        t.buffer = 0
        if data is not None:
            b = s.BufferT()
            b.data = np.frombuffer(np.ascontiguousarray(data, dtype=dtype).tobytes(), dtype=np.uint8)
            self.buffers.append(b)
            t.buffer = len(self.buffers) - 1
        if scale is not None:
            q = s.QuantizationParametersT()
            q.scale = [float(v) for v in np.atleast_1d(scale)]
            zp = np.atleast_1d(0 if zero_point is None else zero_point)
            if zp.size == 1 and len(q.scale) > 1:
                zp = np.repeat(zp, len(q.scale))
            q.zeroPoint = [int(v) for v in zp]
            q.quantizedDimension = axis
            t.quantization = q
        self.tensors.append(t)
        return len(self.tensors) - 1

    def op(self, opcode: str, inputs, outputs, **options) -> None:
        s = self.s
        if opcode not in self.opcodes:
            self.opcodes.append(opcode)
        o = s.OperatorT()
        o.opcodeIndex = self.opcodes.index(opcode)
        o.inputs = list(inputs)
        o.outputs = list(outputs)
        kind = OPTIONS[opcode]
        if kind is not None:
            opts = getattr(s, kind + "T")()
            for key, value in options.items():
                if key == "padding":
                    value = PADDINGS[value]
                elif key == "fused_activation_function":
                    value = ACTIVATIONS[value]
                attr = _camel(key)
                if not hasattr(opts, attr):
                    raise AttributeError(f"{kind} has no field {key}")
                setattr(opts, attr, value)
            o.builtinOptionsType = getattr(s.BuiltinOptions, kind)
            o.builtinOptions = opts
        self.operators.append(o)

    def build(self, inputs, outputs) -> bytes:
        import flatbuffers

        s = self.s
        g = s.SubGraphT()
        g.tensors = self.tensors
        g.operators = self.operators
        g.inputs = list(inputs)
        g.outputs = list(outputs)
        g.name = "main"
        codes = []
        for name in self.opcodes:
            c = s.OperatorCodeT()
            code = getattr(s.BuiltinOperator, name)
            c.builtinCode = code
            c.deprecatedBuiltinCode = min(code, 127)
            c.version = 1
            codes.append(c)
        m = s.ModelT()
        m.version = 3
        m.operatorCodes = codes
        m.subgraphs = [g]
        m.buffers = self.buffers
        m.description = "edgekit aot test model"
        builder = flatbuffers.Builder(1024)
        builder.Finish(m.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())


# ----- references --------------------------------------------------------------------------


def tflm_outputs(model: bytes, inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Run the TFLM interpreter (reference kernels) once per input list; outputs per run."""
    runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    interp = runtime.Interpreter.from_bytes(model)
    results = []
    for feed in inputs:
        for i, x in enumerate(feed):
            interp.set_input(x, i)
        interp.invoke()
        results.append(interp.get_output(0).copy())
    return results


def litert_outputs(model: bytes, inputs: list[list[np.ndarray]]) -> list[np.ndarray]:
    """LiteRT (1 thread) outputs, one per input list."""
    interpreter_mod = pytest.importorskip("ai_edge_litert.interpreter")
    interp = interpreter_mod.Interpreter(model_content=model, num_threads=1)
    interp.allocate_tensors()
    in_details = interp.get_input_details()
    out_index = interp.get_output_details()[0]["index"]
    results = []
    for feed in inputs:
        for d, x in zip(in_details, feed):
            interp.set_tensor(d["index"], x)
        interp.invoke()
        results.append(interp.get_tensor(out_index).copy())
    return results


def random_int8(rng, shape) -> np.ndarray:
    return rng.integers(-128, 128, size=shape, dtype=np.int8)


def kernel_harness(source: str, tmp_path: Path, *flags: str) -> Path:
    """A host program built from C `source` that includes the aot kernel headers (-Wall -Wextra
    -Werror plus `flags`); skips where there is no host C compiler."""
    import subprocess
    from importlib import resources

    from edgekit.aot.hostbuild import host_compiler

    try:
        cc = host_compiler()
    except Exception as exc:  # noqa: BLE001 - the skip names the reason
        pytest.skip(str(exc))
    kernels = resources.files("edgekit.aot") / "kernels"
    (tmp_path / "t.c").write_text(source)
    exe = tmp_path / "t"
    subprocess.run([cc, "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", *flags, "-I", str(kernels),
                    str(tmp_path / "t.c"), "-o", str(exe)], check=True)  # fmt: skip
    return exe


# ----- the emulated Cortex-M4 --------------------------------------------------------------

#: what building firmware for the emulated board and running it take
EMULATOR_TOOLS = ("qemu-system-arm", "arm-none-eabi-gcc", "cmake")
needs_emulator = pytest.mark.skipif(
    not all(shutil.which(t) for t in EMULATOR_TOOLS),
    reason="qemu-system-arm, arm-none-eabi-gcc and cmake are needed for the emulated board",
)


def assert_bit_exact_on_emulated_cortex_m4(model: Path, optimize: str = "balanced", count: int = 4,
                                           seed: int = 0) -> None:  # fmt: skip
    """Convert `model` for mps2-an386 (the DSP path) and run it in edgekit's firmware on QEMU:
    every output equals the TFLM interpreter's, on inputs all 127, all -128 and `count` random."""
    from edgekit import pipeline

    runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    artifact = pipeline.convert(str(model), "mps2-an386", "aot", "int8", optimize=optimize).artifact
    rng = np.random.default_rng(seed)
    feeds = [[np.full(spec.shape, v, np.int8) for spec in artifact.inputs] for v in (127, -128)]
    feeds += [[random_int8(rng, spec.shape) for spec in artifact.inputs] for _ in range(count)]
    interp = runtime.Interpreter.from_bytes(Path(model).read_bytes())
    runner = pipeline.open_runner(artifact, "mps2-an386")
    try:
        assert runner.name == "device-qemu" and artifact.info["dsp"] is True
        for i, feed in enumerate(feeds):
            for k, x in enumerate(feed):
                interp.set_input(x, k)
            interp.invoke()
            got = runner.infer({spec.name: x for spec, x in zip(artifact.inputs, feed)})
            for k, spec in enumerate(artifact.outputs):
                np.testing.assert_array_equal(got[spec.name].reshape(-1), interp.get_output(k).reshape(-1),
                                              err_msg=f"input {i} output {k}")  # fmt: skip
    finally:
        runner.close()


# ----- the builder's own checks ----------------------------------------------------------


def test_built_int8_model_runs_in_tflm_and_reads_back():
    from edgekit.tflite.reader import read_model

    b = ModelBuilder()
    x = b.tensor((1, 4), scale=0.5, zero_point=-3)
    w = b.tensor((2, 4), data=np.array([[1, 2, 3, 4], [-1, -2, -3, -4]]), scale=0.25)
    bias = b.tensor((2,), "int32", data=np.array([10, -10]), scale=0.125)
    y = b.tensor((1, 2), scale=1.0, zero_point=5)
    b.op("FULLY_CONNECTED", [x, w, bias], [y], fused_activation_function="NONE")
    model = b.build([x], [y])

    parsed = read_model(model)
    assert [op.opcode for op in parsed.operators] == ["FULLY_CONNECTED"]
    assert parsed.tensors[x].quantization.zero_point.tolist() == [-3]
    feed = np.array([[1, 2, 3, 4]], dtype=np.int8)
    (out,) = tflm_outputs(model, [[feed]])
    # by hand: acc = sum(w * (x + 3)) + bias = (4+10+18+28) + 10 = 70 and -70;
    # real = acc * 0.5 * 0.25 / 1.0 -> 8.75 and -8.75 -> 9 and -9, plus zero point 5
    assert out.tolist() == [[14, -4]]


def test_built_float_model_runs_in_litert():
    b = ModelBuilder()
    x = b.tensor((1, 3), "float32")
    w = b.tensor((1, 3), "float32", data=np.array([[1.0, -2.0, 0.5]]))
    y = b.tensor((1, 1), "float32")
    b.op("FULLY_CONNECTED", [x, w, -1], [y])
    model = b.build([x], [y])
    (out,) = litert_outputs(model, [[np.array([[2.0, 1.0, 4.0]], dtype=np.float32)]])
    assert out.tolist() == [[2.0]]


# ----- compiling and running a bundle on the host -------------------------------------------


def compile_and_load(model: bytes, tmp_path: Path, name: str = "m", **options):
    """Compile .tflite bytes into a bundle in tmp_path, build it with the host compiler, load it."""
    from edgekit.aot.compiler import compile_model
    from edgekit.aot.hostbuild import host_compiler, load_bundle

    try:
        host_compiler()
    except Exception as exc:  # noqa: BLE001 - the skip names the reason
        pytest.skip(str(exc))
    bundle = compile_model(model, name=name, **options)
    out = tmp_path / name
    bundle.write(out)
    return bundle, load_bundle(bundle, out)


def assert_bit_exact_with_tflm(model: bytes, tmp_path: Path, count: int = 12, seed: int = 0, **options):
    """The bundle's int8 outputs equal the TFLM interpreter's on `count` random inputs."""
    bundle, host = compile_and_load(model, tmp_path, **options)
    rng = np.random.default_rng(seed)
    feeds = [[random_int8(rng, t.shape) for t in bundle.inputs] for _ in range(count)]
    expected = tflm_outputs(model, feeds)
    for feed, ref in zip(feeds, expected):
        got = host.run(*feed)[0].reshape(ref.shape)
        if not np.array_equal(got, ref):
            diff = np.flatnonzero(got != ref)
            raise AssertionError(
                f"{diff.size} of {ref.size} outputs differ from TFLM, first at {diff[:5].tolist()}: "
                f"aot {got.reshape(-1)[diff[:5]].tolist()} tflm {ref.reshape(-1)[diff[:5]].tolist()}"
            )
    return bundle


def assert_close_to_litert(model: bytes, tmp_path: Path, count: int = 5, seed: int = 0, rtol: float = 1e-5):
    """The bundle's float32 outputs are within `rtol` (relative to the output's scale) of LiteRT's."""
    bundle, host = compile_and_load(model, tmp_path)
    rng = np.random.default_rng(seed)
    feeds = [
        [rng.uniform(-2, 2, size=t.shape).astype(np.float32) for t in bundle.inputs]
        for _ in range(count)
    ]
    expected = litert_outputs(model, feeds)
    for feed, ref in zip(feeds, expected):
        got = host.run(*feed)[0].reshape(ref.shape)
        scale = max(float(np.max(np.abs(ref))), 1e-30)
        np.testing.assert_allclose(got, ref, rtol=rtol, atol=rtol * scale)
    return bundle
