"""TF.js: the tensorflowjs conversion, and graph models run under Node.js (node-wasm, node-cpu)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgekit import pipeline, placement, targets
from edgekit.bench.harness import BenchSettings
from edgekit.bench.report import check
from edgekit.bench.run import bench
from edgekit.core import RunOptions
from edgekit.errors import EdgekitError
from tests import tinymodels
from tests.webtools import Stopwatch, broken_wasm_dir, keras_top1, need_node

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


# ---------------------------------------------------------------- conversion


def test_weight_quantizations_write_graph_models_of_their_dtype(digits_model):
    """none, fp16 and dynamic write model.json + shards whose weights are float32, float16, uint8."""
    artifacts = {q: pipeline.convert(str(digits_model), "node-wasm", quantization=q).artifact for q in ("none", "fp16", "dynamic")}
    for quantization, artifact in artifacts.items():
        assert artifact.primary == "model.json"
        assert any(f.endswith(".bin") for f in artifact.files)
        manifest = json.loads((artifact.path / "model.json").read_text())
        assert manifest["format"] == "graph-model"
        assert artifact.info["weight_quantization"] == quantization
        assert [s.name for s in artifact.inputs] == ["input_0"]
        assert artifact.inputs[0].shape == (-1, 8, 8, 1)
    assert "float32" in artifacts["none"].info["weight_dtypes"]
    assert "float16" in artifacts["fp16"].info["weight_dtypes"]
    assert "uint8" in artifacts["dynamic"].info["weight_dtypes"]
    sizes = {q: a.info["weight_bytes"] for q, a in artifacts.items()}
    # float16 halves the float32 weights; uint8 quarters them (plus each tensor's min and scale)
    assert sizes["fp16"] < 0.6 * sizes["none"]
    assert sizes["dynamic"] < 0.4 * sizes["none"]


def test_a_tflite_source_is_one_line(tmp_path):
    path = tmp_path / "tiny_int8.tflite"
    path.write_bytes(tinymodels.tiny_int8_cnn_bytes())
    with pytest.raises(EdgekitError) as error:
        pipeline.convert(str(path), "node-wasm")
    message = str(error.value)
    assert "\n" not in message
    assert ".tflite" in message and "Keras or SavedModel source" in message


def test_a_keras_source_becomes_a_savedmodel_with_named_signature(digits_model, tmp_path):
    from edgekit.models import open_source
    from edgekit.sources import loader_for
    from edgekit.sources.tensorflow import load_tensorflow

    folder = loader_for(open_source(digits_model)).saved_model(tmp_path)
    serving = load_tensorflow().saved_model.load(str(folder)).signatures["serving_default"]
    inputs = serving.structured_input_signature[1]
    assert list(inputs) == ["input_0"] and inputs["input_0"].shape[0] is None
    assert list(serving.structured_outputs) == ["output_0"]


def test_an_op_tfjs_lacks_is_one_line_naming_it(tmp_path):
    from edgekit.sources.tensorflow import load_tensorflow

    tf = load_tensorflow()

    class Determinant(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec((None, 3, 3), tf.float32, name="x")])
        def __call__(self, x):
            return {"det": tf.linalg.det(x)}

    module = Determinant()
    folder = tmp_path / "det_savedmodel"
    tf.saved_model.save(module, str(folder), signatures={"serving_default": module.__call__})
    with pytest.raises(EdgekitError) as error:
        pipeline.convert(str(folder), "node-wasm")
    message = str(error.value)
    assert "\n" not in message
    assert "TF.js has no kernel" in message and "MatrixDeterminant" in message


def test_int8_is_refused_naming_the_weight_quantizations(digits_model):
    with pytest.raises(EdgekitError, match="none, fp16, dynamic"):
        pipeline.convert(str(digits_model), "node-wasm", quantization="int8")


# ---------------------------------------------------------------- Node.js


@pytest.mark.slow
def test_mnist_cnn_on_node_wasm_matches_keras(mnist_cnn, tmp_path):
    need_node()
    report = bench(str(mnist_cnn), "node-wasm", settings=BenchSettings(runs=30, warmup=5, dataset="mnist5k"),
                   out=tmp_path / "node.json", log=False)
    check(report)
    assert report["runner"] == "tfjs-wasm"
    assert report["latency_ms"]["source"] == "device" and report["latency_ms"]["count"] == 30
    assert report["memory"]["scope"] == "device-process"
    details = report["env"]["runner_details"]
    assert details["backend"] == "wasm"
    assert isinstance(details["simd"], bool) and details["threads"] >= 1
    assert report["env"]["node"].startswith("v")
    assert report["accuracy"]["n"] == 1000
    assert abs(report["accuracy"]["value"] - keras_top1(mnist_cnn)) * 100 <= 0.2
    assert report["fidelity"]["reference"] == "keras"
    assert report["fidelity"]["max_abs_err"] < 1e-4
    assert json.loads((tmp_path / "node.json").read_text())["latency_ms"]["p50"] == report["latency_ms"]["p50"]


def test_node_cpu_runs_the_plain_javascript_backend(digits_model):
    need_node()
    report = bench(str(digits_model), "node-cpu", settings=BenchSettings(runs=5, warmup=1, limit=16), log=False)
    assert report["runner"] == "tfjs-cpu"
    assert report["env"]["runner_details"]["backend"] == "cpu"
    assert report["fidelity"]["max_abs_err"] < 1e-4


def test_kws_savedmodel_converts_and_runs_on_node_wasm(mlperf_dir):
    need_node()
    report = bench(str(mlperf_dir / "kws_ref_savedmodel"), "node-wasm",
                   settings=BenchSettings(runs=10, warmup=2, limit=16), log=False)
    check(report)
    assert report["runner"] == "tfjs-wasm"
    assert report["model"]["format"] == "savedmodel"
    assert report["artifact"]["info"]["format"] == "tfjs-graph-model"
    assert report["fidelity"]["reference"] == "savedmodel" and report["fidelity"]["n"] == 16
    assert report["fidelity"]["max_abs_err"] < 1e-4
    assert report["fidelity"]["argmax_agreement"] == 1.0


# ---------------------------------------------------------------- faults


def test_without_node_bench_is_one_line_and_exit_1(tmp_path, digits_model):
    env = dict(os.environ, PATH=str(tmp_path), PYTHONPATH=str(REPO), EDGEKIT_REGISTRY=str(tmp_path / "registry"))
    result = subprocess.run([sys.executable, "-m", "edgekit", "bench", str(digits_model), "--target", "node-wasm"],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Node.js is not installed" in lines[0] and "install" in lines[0]
    assert not (tmp_path / "registry" / "store").exists()  # refused before converting anything


def test_missing_npm_packages_name_npm_ci(tmp_path, monkeypatch):
    folder = tmp_path / "js"
    folder.mkdir()
    for name in ("node-device.js", "package.json", "package-lock.json"):
        (folder / name).write_text((REPO / "js" / name).read_text())
    monkeypatch.setenv("EDGEKIT_WEB_DIR", str(folder))
    for target in ("node-wasm", "browser-wasm"):
        with pytest.raises(EdgekitError, match=r"@tensorflow/tfjs.* missing in .*: run `npm ci` there"):
            placement.reachable(targets.get(target), RunOptions())


def test_serve_is_refused_for_targets_that_are_not_browsers():
    for target in ("node-wasm", "host-cpu"):
        with pytest.raises(EdgekitError, match="--serve serves a page .* choose a browser target"):
            placement.reachable(targets.get(target), RunOptions(serve="127.0.0.1:8000"))


def test_a_wasm_binary_that_will_not_load_is_one_line_within_a_bound(digits_model, tmp_path, monkeypatch):
    need_node()
    artifact = pipeline.convert(str(digits_model), "node-wasm").artifact
    monkeypatch.setenv("EDGEKIT_TFJS_WASM_DIR", str(broken_wasm_dir(tmp_path)))
    with Stopwatch() as watch, pytest.raises(EdgekitError) as error:
        placement.place(artifact, targets.get("node-wasm"), RunOptions(timeout=20))
    assert watch.seconds < 25
    message = str(error.value)
    assert "\n" not in message
    assert "refused `load`" in message and "wasm backend failed to start" in message
