"""The process boundary: edgekit.link/1 between this process and the device-side Python program."""

from __future__ import annotations

import io
import shutil
import sys

import numpy as np
import pytest

from edgekit.link.device import LinkError, pack_arrays, read_frame, unpack_arrays, write_frame

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("ai_edge_litert")

from tinymodels import tiny_float_cnn_bytes, tiny_int8_cnn_bytes  # noqa: E402

from edgekit import pipeline  # noqa: E402
from edgekit.backends.tflite import LiteRTRunner  # noqa: E402
from edgekit.errors import EdgekitError  # noqa: E402
from edgekit.link.host import ChildProcess, LinkFailure, LinkRunner, Session, python_device  # noqa: E402


def test_frames_and_arrays_round_trip_bit_for_bit():
    arrays = [
        ("a", np.arange(-128, 128, dtype=np.int8).reshape(16, 16)),
        ("b", np.linspace(-1, 1, 7, dtype=np.float32)),
        ("c", np.array([[1.5, -2.25]], dtype=np.float16)),
        ("d", np.array(7, dtype=np.int64)),
    ]
    described, payload = pack_arrays(arrays)
    stream = io.BytesIO()
    write_frame(stream.write, {"op": "x", "inputs": described}, payload)
    stream.seek(0)
    header, data = read_frame(stream.read)
    assert header["op"] == "x" and header["payload_bytes"] == len(payload)
    for (name, want), (got_name, got) in zip(arrays, unpack_arrays(header["inputs"], data)):
        assert name == got_name and got.dtype == want.dtype and got.shape == want.shape
        np.testing.assert_array_equal(got, want)


def _frame(header, payload=b""):
    stream = io.BytesIO()
    write_frame(stream.write, header, payload)
    return stream.getvalue()


def test_a_damaged_stream_is_a_link_error():
    described, payload = pack_arrays([("a", np.ones(4, np.float32))])
    raw = _frame({"op": "infer", "inputs": described}, payload)
    with pytest.raises(LinkError, match="middle of a frame"):
        read_frame(io.BytesIO(raw[:-3]).read)
    with pytest.raises(LinkError, match="not speaking"):
        read_frame(io.BytesIO(b"\xff\xff\xff\x7f" + raw).read)
    with pytest.raises(LinkError, match="more than its tensors"):
        unpack_arrays(described, payload + b"\x00")
    with pytest.raises(LinkError, match="past the end"):
        unpack_arrays(described, payload[:-1])


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("link")
    (folder / "float.tflite").write_bytes(tiny_float_cnn_bytes(seed=5))
    (folder / "int8.tflite").write_bytes(tiny_int8_cnn_bytes(seed=5))
    return folder


@pytest.fixture()
def isolated_program(tmp_path):
    """The device program alone in a folder, run with `python -I`: edgekit itself is not importable."""
    program = tmp_path / "edgekit_device.py"
    from edgekit.link.host import DEVICE_PROGRAM

    shutil.copy(DEVICE_PROGRAM, program)
    return [sys.executable, "-I", str(program), str(tmp_path / "cache")]


def _runner(argv, artifact, runtime):
    return LinkRunner(Session(ChildProcess(argv), timeout=30), artifact, runtime)


@pytest.mark.parametrize("model,backend,runtime", [("int8.tflite", "tflite", "litert"), ("float.tflite", "onnx", "onnxruntime")])
def test_the_device_program_runs_the_artifact_as_the_host_runtime_does(models, isolated_program, model, backend, runtime):
    artifact = pipeline.convert(str(models / model), "host-cpu", backend).artifact
    spec = artifact.inputs[0]
    rng = np.random.default_rng(1)
    with _runner(isolated_program, artifact, runtime) as remote, pipeline.open_runner(artifact, "host-cpu") as here:
        assert remote.memory_scope == "device-process" and remote.name == runtime
        for _ in range(3):
            if np.dtype(spec.dtype).kind == "i":
                x = rng.integers(-128, 128, size=spec.shape).astype(spec.dtype)
            else:
                x = rng.standard_normal(spec.shape).astype(spec.dtype)
            ours, theirs = remote.infer({spec.name: x}), here.infer({spec.name: x})
            for name in theirs:
                np.testing.assert_array_equal(ours[name], theirs[name])
        samples = remote.time_on_device({spec.name: x}, runs=7, warmup=2)
        assert len(samples) == 7 and all(s > 0 for s in samples)
        env = remote.environment()
        assert env["cores"] >= 1 and env["uname"] and "numpy" in env["packages"]
        assert {"litert": "ai-edge-litert", "onnxruntime": "onnxruntime"}[runtime] in env["packages"], env["packages"]
        memory = remote.memory()
        assert 0 < memory["model_rss_bytes"] < 256 * 2**20


def test_files_are_sent_once_into_the_content_hash_cache(models, isolated_program):
    session = Session(ChildProcess(isolated_program), timeout=30)
    puts = []
    call = session.call
    session.call = lambda op, *a, **k: (puts.append(op), call(op, *a, **k))[1]
    try:
        first = session.send_file(str(models / "float.tflite"))
        second = session.send_file(str(models / "float.tflite"))
    finally:
        session.close()
    assert first == second and puts.count("put") == 1 and puts.count("has") == 2
    assert open(first, "rb").read() == (models / "float.tflite").read_bytes()


def test_a_bad_request_is_one_line_and_the_program_keeps_serving(models, isolated_program):
    session = Session(ChildProcess(isolated_program), timeout=30)
    try:
        with pytest.raises(EdgekitError) as caught:
            session.call("load", runtime="litert", file=str(models / "missing.tflite"))
        assert "not on the device" in str(caught.value) and "\n" not in str(caught.value)
        with pytest.raises(EdgekitError, match="unknown runtime"):
            session.call("load", runtime="nope", file=str(models / "float.tflite"))
        assert session.call("hello")[0]["protocol"] == "edgekit.link/1"
    finally:
        session.close()


def test_a_program_that_dies_or_hangs_fails_within_the_bound():
    import time

    dead = Session(ChildProcess([sys.executable, "-c", "import sys; sys.exit(3)"]), timeout=10)
    with pytest.raises(LinkFailure, match="exit code 3|ended|closed"):
        dead.call("hello")
    dead.transport.close()
    hung = Session(ChildProcess([sys.executable, "-c", "import time; time.sleep(60)"]), timeout=1.0)
    started = time.monotonic()
    with pytest.raises(LinkFailure, match="did not answer in time"):
        hung.call("hello")
    assert time.monotonic() - started < 5
    hung.transport.close()


def test_the_device_program_runs_in_this_venv_too(models):
    artifact = pipeline.convert(str(models / "float.tflite"), "host-cpu", "tflite").artifact
    with LinkRunner(Session(python_device(sys.executable, str(models / "cache"))), artifact, "litert") as remote:
        with LiteRTRunner(artifact.primary_path) as here:
            x = np.zeros(artifact.inputs[0].shape, np.float32)
            name = artifact.outputs[0].name
            np.testing.assert_array_equal(remote.infer({artifact.inputs[0].name: x})[name], here.infer({artifact.inputs[0].name: x})[name])
