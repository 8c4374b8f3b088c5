"""The host pipeline end to end: convert (tflite, onnx) through the cache, bench, predict, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from clitools import run_cli
from edgekit import datasets, pipeline
from edgekit.core import Artifact
from edgekit.backends.tflite import LiteRTRunner
from edgekit.bench import report as reports
from edgekit.errors import EdgekitError
from edgekit.quantize_io import quantize_input


@pytest.fixture(scope="module")
def converted(digits_model):
    """The digits CNN converted for host-cpu in every tflite quantization (and onnx), once."""
    out = {q: pipeline.convert(str(digits_model), "host-cpu", "tflite", q, "digits") for q in ("none", "fp16", "dynamic", "int8")}
    out["onnx"] = pipeline.convert(str(digits_model), "host-cpu", "onnx", "none")
    return out


def test_each_quantization_gives_the_dtypes_it_promises(converted):
    int8 = converted["int8"].artifact
    assert [s.dtype for s in int8.inputs] == ["int8"] and [s.dtype for s in int8.outputs] == ["int8"]
    assert int8.inputs[0].scale > 0 and int8.inputs[0].zero_point is not None
    for q in ("none", "fp16", "dynamic"):
        assert converted[q].artifact.inputs[0].dtype == "float32"
    sizes = {q: (converted[q].artifact.path / "model.tflite").stat().st_size for q in ("none", "fp16", "int8")}
    assert sizes["int8"] < sizes["fp16"] < sizes["none"]  # weights shrink 4x / 2x


def test_artifact_manifest_records_recipe_and_hash(converted):
    artifact = Artifact.load(converted["int8"].artifact.path)
    assert artifact.recipe["quantization"] == "int8"
    assert artifact.recipe["calibration_sha256"] == datasets.load("digits").sha256
    assert artifact.recipe["toolchain"]["tensorflow"].startswith("2.19")
    assert artifact.info["calibration"] == "digits"
    assert "model.tflite" in artifact.files


def test_repeated_convert_is_served_from_the_cache_without_tensorflow(converted, digits_model):
    code = (
        "import sys, time; from edgekit import pipeline; t = time.perf_counter(); "
        f"c = pipeline.convert({str(digits_model)!r}, 'host-cpu', 'tflite', 'int8', 'digits'); "
        "print(c.cached, c.artifact.sha256, 'tensorflow' in sys.modules, 'mlflow' in sys.modules, time.perf_counter() - t)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[:4] == ["True", converted["int8"].artifact.sha256, "False", "False"]


def test_int8_keeps_accuracy_and_fidelity(converted):
    from edgekit.bench.harness import BenchSettings, benchmark
    from edgekit.reference import source_runner
    from edgekit.targets import get

    results = {}
    for q in ("none", "int8"):
        conversion = converted[q]
        with LiteRTRunner(conversion.artifact.primary_path, threads=1) as runner:
            reference = source_runner(conversion.source)
            results[q] = benchmark(
                runner, conversion.artifact, get("host-cpu"), BenchSettings(runs=5, warmup=1, dataset="digits"),
                conversion.source, reference,
            )
    assert results["none"]["accuracy"]["value"] > 0.85  # a trained model, not chance (0.10)
    assert results["none"]["fidelity"]["max_abs_err"] < 1e-5
    assert results["int8"]["fidelity"]["argmax_agreement"] > 0.95
    assert abs(results["none"]["accuracy"]["value"] - results["int8"]["accuracy"]["value"]) < 0.03
    assert results["int8"]["accuracy"]["n"] == len(datasets.load("digits").x_test)


def test_onnx_matches_the_source_model(converted):
    conversion = converted["onnx"]
    from edgekit.backends.onnx import OnnxRuntimeRunner
    from edgekit.reference import source_runner

    x = datasets.load("digits").x_test[:16]
    with OnnxRuntimeRunner(conversion.artifact.primary_path) as ours, source_runner(conversion.source) as ref:
        a = ours.infer({ours.inputs[0].name: x})[ours.outputs[0].name]
        b = ref.infer({ref.inputs[0].name: x})[ref.outputs[0].name]
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_bench_cli_writes_a_valid_report(converted, digits_model, tmp_path):
    out = tmp_path / "r.json"
    code, stdout, stderr = run_cli(
        "bench", str(digits_model), "--target", "host-cpu", "-q", "int8", "--calibration", "digits",
        "--dataset", "digits", "--runs", "7", "--warmup", "2", "--threads", "1", "--out", str(out),
    )
    assert code == 0, stderr
    report = reports.read(out)
    assert report["latency_ms"]["count"] == 7 and len(report["latency_ms"]["samples"]) == 7
    assert report["artifact"]["sha256"] == converted["int8"].artifact.sha256
    assert report["env"]["threads"] == 1 and report["env"]["cores"] >= 1
    assert "top1" in stdout


def test_predict_cli_saves_the_runner_outputs(converted, tmp_path):
    artifact = converted["int8"].artifact
    x = datasets.load("digits").x_test[:10]
    np.save(tmp_path / "x.npy", x)
    code, _, stderr = run_cli(
        "predict", str(artifact.path), "--target", "host-cpu", "--input", str(tmp_path / "x.npy"),
        "--output", str(tmp_path / "y.npy"),
    )
    assert code == 0, stderr
    y = np.load(tmp_path / "y.npy")
    assert y.shape == (10, 10) and y.dtype == np.int8
    with LiteRTRunner(artifact.primary_path) as runner:
        spec = runner.inputs[0]
        expected = [runner.infer({spec.name: quantize_input(s[None], spec)})[runner.outputs[0].name] for s in x]
    np.testing.assert_array_equal(y, np.concatenate(expected))


def test_export_copies_the_artifact_whole(converted, tmp_path):
    pipeline.export(converted["none"].artifact, tmp_path / "out")
    copy = Artifact.load(tmp_path / "out")
    assert (tmp_path / "out" / "model.tflite").read_bytes() == converted["none"].artifact.primary_path.read_bytes()
    assert copy.sha256 == converted["none"].artifact.sha256


@pytest.fixture(scope="module")
def bad_sources(tmp_path_factory):
    """Files a user may hand edgekit that it must refuse: each path by name."""
    import onnx
    from onnx import TensorProto, helper
    from tinymodels import tiny_float_cnn_bytes, tiny_int8_cnn_bytes

    folder = tmp_path_factory.mktemp("bad-sources")
    (folder / "corrupt.h5").write_bytes(b"not an hdf5 file at all")
    (folder / "garbage.onnx").write_bytes(b"garbage")
    (folder / "q.tflite").write_bytes(tiny_int8_cnn_bytes())
    (folder / "f.tflite").write_bytes(tiny_float_cnn_bytes())
    (folder / "broken_savedmodel").mkdir()
    (folder / "broken_savedmodel" / "saved_model.pb").write_bytes(b"not a protobuf")
    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), folder / "relu.onnx")
    return folder


# every error a user meets between naming a model and getting an artifact, once each
@pytest.mark.parametrize(
    "args, expected",
    [
        (["convert", "nonexistent.tflite", "--target", "host-cpu"], "model file not found: nonexistent.tflite"),
        (["convert", "{model}", "--target", "no-such-board"], "unknown target 'no-such-board'"),
        (["convert", "{model}", "--target", "nucleo-l4r5zi", "-b", "onnx"], "does not support backend 'onnx'"),
        (["bench", "{model}", "--target", "host-cpu", "--dataset", "mnist5k", "--no-log"], "the model takes (8, 8, 1)"),
        (["convert", "{bad}/corrupt.h5", "--target", "host-cpu"], "corrupt.h5: cannot load this Keras model"),
        (["convert", "{bad}/broken_savedmodel", "--target", "host-cpu"], "broken_savedmodel: cannot load this SavedModel"),
        (["convert", "{bad}/garbage.onnx", "--target", "host-cpu", "-b", "onnx"], "garbage.onnx: not a valid ONNX model"),
        (["convert", "{bad}/relu.onnx", "--target", "host-cpu", "-b", "tflite"],
         "relu.onnx: an ONNX model cannot be converted to TensorFlow Lite here: use --backend onnx"),
        # the quantization and calibration decisions (edgekit.quantization.decide)
        (["convert", "{model}", "--target", "host-cpu", "-b", "onnx", "-q", "int8"],
         "backend onnx does not support --quantize int8: choose one of none, dynamic"),
        (["convert", "{bad}/q.tflite", "--target", "host-cpu", "-q", "fp16"],
         "q.tflite is a full-integer int8 .tflite, which cannot be converted to --quantize fp16"),
        (["convert", "{bad}/f.tflite", "--target", "nucleo-l4r5zi", "-b", "tflm"],
         "f.tflite is a float .tflite and backend tflm runs int8 models only"),
        (["convert", "{model}", "--target", "host-cpu", "-q", "int8"],
         "needs calibration data: pass --calibration digits|mnist5k|FILE.npz, or register the model with "
         "--dataset, or convert with --quantize none or fp16 or dynamic"),
        (["convert", "{model}", "--target", "host-cpu", "-q", "int8", "--calibration", "mnist5k"],
         "the calibration data has samples of shape (28, 28, 1), the model takes (8, 8, 1)"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(args, expected, digits_model, bad_sources):
    args = [a.format(model=digits_model, bad=bad_sources) for a in args]
    code, stdout, stderr = run_cli(*args)
    assert code == 1, (stdout, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], stderr


def test_int8_without_calibration_is_one_message_from_every_backend(digits_model):
    """The target's default int8 (tflm, aot) and an explicit -q int8 (tflite) meet the same check."""
    messages = {}
    for target, backend in (("host-cpu", "tflite"), ("nucleo-l4r5zi", "tflm"), ("nucleo-l4r5zi", "aot")):
        with pytest.raises(EdgekitError) as caught:
            pipeline.convert(str(digits_model), target, backend, "int8" if backend == "tflite" else None)
        messages[backend] = str(caught.value)
    head = f"int8 quantization of {digits_model} needs calibration data: pass --calibration"
    assert all(m.startswith(head) for m in messages.values()), messages
    assert messages["tflm"].endswith("register the model with --dataset")  # tflm has no other quantization
    assert messages["aot"].endswith("or convert with --quantize none")


def test_failed_conversion_leaves_nothing_behind(digits_model, session_registry):
    artifacts = session_registry / "store"
    before = sorted(p.name for p in artifacts.rglob("*"))
    with pytest.raises(EdgekitError, match="calibration"):
        pipeline.convert(str(digits_model), "host-cpu", "tflite", "int8", None)
    assert sorted(p.name for p in artifacts.rglob("*")) == before


def test_unknown_backend_is_a_usage_error(digits_model):
    code, _, stderr = run_cli("convert", str(digits_model), "--target", "host-cpu", "--backend", "nope")
    assert code == 2 and "nope" in stderr


def test_two_simultaneous_converts_leave_one_artifact(tmp_path, digits_model):
    registry = tmp_path / "registry"
    command = [sys.executable, "-m", "edgekit", "--registry", str(registry), "convert", str(digits_model),
               "--target", "host-cpu", "-q", "dynamic"]
    procs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    # one artifact: a single store entry, and a single copy logged to MLflow by one conversion run
    manifests = [Artifact.load(p.parent) for p in registry.rglob(Artifact.MANIFEST)]
    assert len(manifests) == 2 and len({(m.recipe_key, m.sha256) for m in manifests}) == 1
    paths = {line.rsplit(": ", 1)[1] for out, _ in outs for line in out.splitlines() if "model.tflite" in line}
    assert len(paths) == 1 and Path(paths.pop()).parent in {m.path for m in manifests}


def test_a_tflite_keeps_its_own_quantization(tmp_path):
    from tinymodels import tiny_float_cnn_bytes, tiny_int8_cnn_bytes

    int8_file, float_file = tmp_path / "q.tflite", tmp_path / "f.tflite"
    int8_file.write_bytes(tiny_int8_cnn_bytes())
    float_file.write_bytes(tiny_float_cnn_bytes())
    # host-cpu's default is float, but a full-integer file is int8 as it is, byte for byte
    conversion = pipeline.convert(str(int8_file), "host-cpu", "tflite")
    assert conversion.artifact.recipe["quantization"] == "int8"
    assert conversion.artifact.primary_path.read_bytes() == int8_file.read_bytes()
    # a float file stays float where the target's default is int8 (its refusals: test_bad_input_...)
    conversion = pipeline.convert(str(float_file), "mps2-an386", "aot")
    assert conversion.artifact.recipe["quantization"] == "none"


def test_an_int8_tflite_through_onnx_keeps_its_scales_and_its_outputs(tmp_path):
    from tinymodels import tiny_int8_cnn_bytes

    from edgekit.backends.onnx import OnnxBackend
    from edgekit.targets import get

    path = tmp_path / "q.tflite"
    path.write_bytes(tiny_int8_cnn_bytes())
    conversion = pipeline.convert(str(path), "host-cpu", "onnx")
    artifact = conversion.artifact
    assert artifact.recipe["quantization"] == "int8"
    with LiteRTRunner(path) as litert, OnnxBackend().load(artifact, get("host-cpu"), pipeline.RunOptions()) as ours:
        assert [(s.scale, s.zero_point) for s in ours.inputs] == [(s.scale, s.zero_point) for s in litert.inputs]
        x = np.random.default_rng(0).uniform(0, 1, size=(16, *litert.inputs[0].shape[1:])).astype(np.float32)
        q = quantize_input(x, litert.inputs[0])
        a = np.concatenate([ours.infer({ours.inputs[0].name: s[None]})[ours.outputs[0].name] for s in q])
        b = np.concatenate([litert.infer({litert.inputs[0].name: s[None]})[litert.outputs[0].name] for s in q])
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1  # the same int8 graph, up to one step of rounding
