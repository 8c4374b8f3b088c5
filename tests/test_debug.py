"""`edgekit debug` end to end on tiny generated models: a miscalibrated layer is named, a good
conversion passes on every backend, the page is self-contained."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

pytest.importorskip("tf_keras", reason="tf-keras not installed")

from edgekit.errors import EdgekitError  # noqa: E402
from tests.clitools import run_cli_here  # noqa: E402

import tinymodels  # noqa: E402


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The mixing MLP, its data (pixels that move together), and calibration data that covers
    the input's range but a tenth of the `mix` layer's."""
    folder = tmp_path_factory.mktemp("debug")
    model = folder / "mixing.keras"
    tinymodels.mixing_mlp(seed=4).save(model)
    labels = np.zeros(100, dtype=np.int64)
    np.savez(folder / "good.npz", x=tinymodels.correlated_data(count=100, seed=4), y=labels)
    np.savez(folder / "tenth.npz", x=tinymodels.cancelling_data(count=100, seed=4), y=labels)
    return {"model": str(model), "good": str(folder / "good.npz"), "tenth": str(folder / "tenth.npz"), "dir": folder}


def debug_cli(capsys, files, *args, calibration="good"):
    return run_cli_here(
        capsys, "debug", files["model"], "--target", "host-cpu", "--dataset", files["good"],
        "--calibration", files[calibration], *args,
    )  # fmt: skip


def test_miscalibrated_layer_is_named_with_its_clipping(capsys, files):
    code, out, _ = debug_cli(capsys, files, "--backend", "tflite", "--quantize", "int8", calibration="tenth")
    assert code == 1, out
    lines = out.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("first failing layer:"))
    assert lines[first].startswith("first failing layer: mix (FULLY_CONNECTED")
    assert "clipped:" in lines[first + 1] and "outside the calibrated range" in lines[first + 1]

    code, out, _ = debug_cli(capsys, files, "--backend", "tflite", "--quantize", "int8", "--json", calibration="tenth")
    result = json.loads(out)
    assert code == 1 and result["first_failing_layer"] == "mix" and not result["ok"]
    layers = {row["layer"]: row for row in result["layers"]}
    assert [row["layer"] for row in result["layers"]][:3] == ["input_0", "flatten", "mix"]
    assert all(row["cosine"] >= 0.99 for row in result["layers"][:2])  # the input's range was covered
    mix = layers["mix"]["range"]
    assert mix["clipped"] and mix["clipped_share"] > 0.5
    calibrated = mix["calibrated"][1] - mix["calibrated"][0]
    observed = mix["observed"][1] - mix["observed"][0]
    assert 5 < observed / calibrated < 20  # calibration saw about a tenth of the layer's range


@pytest.mark.parametrize(
    "backend, quantize",
    [("tflite", "int8"), ("tflm", "int8"), ("aot", "int8"), ("tflite", "fp16"), ("tflite", "dynamic"), ("onnx", "none")],
)
def test_correct_conversion_passes_every_layer(capsys, files, backend, quantize):
    code, out, err = debug_cli(capsys, files, "--backend", backend, "--quantize", quantize, "--json")
    assert code == 0, out + err
    result = json.loads(out)
    assert result["ok"] and result["first_failing_layer"] is None
    names = [row["layer"] for row in result["layers"]]
    assert {"mix", "head", "logits"} <= set(names)
    assert all(row["cosine"] >= 0.99 for row in result["layers"]), result["layers"]
    if backend == "aot":
        assert result["bit_exact"]["exact"] and result["bit_exact"]["compared"] >= 4
    if quantize == "int8":
        assert all(row["converted_quantization"]["dtype"] == "int8" for row in result["layers"])


def test_fail_fast_stops_at_the_layer_and_writes_a_self_contained_page(capsys, files):
    page = files["dir"] / "debug.html"
    code, out, _ = debug_cli(
        capsys, files, "--backend", "tflm", "--fail-fast", "--html", str(page), calibration="tenth"
    )
    assert code == 1 and "(--fail-fast: later layers not shown)" in out
    table = out.split("\n\n")[1]
    assert table.splitlines()[-1].split()[1] == "mix"  # the last row shown is the failing layer
    text = page.read_text()
    assert text.startswith("<!DOCTYPE html>") and "<svg" in text and "first failing layer: mix" in text
    assert "<script" not in text.lower()
    # nothing to fetch: the only URLs are the SVG namespaces
    assert set(re.findall(r"https?://[^\"' )]+", text)) <= {"http://www.w3.org/2000/svg", "http://www.w3.org/1999/xlink"}


def test_a_tolerance_tighter_than_int8_fails_the_first_quantized_layer(capsys, files):
    code, out, _ = debug_cli(capsys, files, "--backend", "tflm", "--atol", "1e-6", "--json")
    result = json.loads(out)
    assert code == 1 and result["first_failing_layer"] == "input_0"  # quantizing the input already errs
    assert result["layers"][0]["outside_tolerance"] > 0


def test_an_int8_tflite_is_judged_against_litert_on_the_same_file(capsys, tmp_path):
    path = tmp_path / "tiny_cnn.tflite"
    path.write_bytes(tinymodels.tiny_int8_cnn_bytes(seed=2))
    code, out, err = run_cli_here(capsys, "debug", str(path), "--target", "host-cpu", "--backend", "tflm", "--json")
    assert code == 0, out + err
    result = json.loads(out)
    assert result["reference"] == "LiteRT on the source .tflite"
    assert "random" in result["inputs_from"]
    assert len(result["layers"]) == 7 and all(row["cosine"] >= 0.99 for row in result["layers"])
    assert {row["matched_by"] for row in result["layers"][1:-1]} == {"name"}


def test_tfjs_is_not_supported_yet_and_says_what_to_do():
    from edgekit.debug.debugger import check_backend

    with pytest.raises(EdgekitError, match="does not support the tfjs backend yet: .*--backend tflite"):
        check_backend("tfjs")
    with pytest.raises(EdgekitError, match="choose one of tflite, tflm, aot, onnx"):
        check_backend("tensorrt")
