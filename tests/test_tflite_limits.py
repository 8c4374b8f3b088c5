"""A kernel's numeric limits refuse a model only for the backends whose kernels have them.

TensorFlow's converter gives a classifier whose logits barely vary a SOFTMAX
input scale of about 8e-9, as it does the official int8 MobileNetV2. TFLM's int8 SOFTMAX turns beta * input scale * 2**26 into a fixed-point
multiplier that must exceed 1, and aborts the process otherwise; the aot
compiler reproduces TFLM's arithmetic. LiteRT's int8 SOFTMAX computes through
a lookup table and runs the model. So `bench --target host-cpu` runs it on
LiteRT, and the tflm and aot backends refuse it in one line.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import tinymodels
from clitools import run_cli_here
from edgekit.bench import report as reports
from edgekit.tflite.reader import read_model

pytest.importorskip("ai_edge_litert", reason="ai-edge-litert not installed")


@pytest.fixture(scope="module")
def vanishing_logits(tmp_path_factory) -> Path:
    """An int8 classifier from TensorFlow's converter whose dense layer gives near-constant logits."""
    pytest.importorskip("tf_keras", reason="tf-keras not installed: cannot build test models")
    model = tinymodels.tiny_cnn(seed=1)
    dense = model.get_layer("dense")
    dense.set_weights([w * 1e-7 for w in dense.get_weights()])
    data = tinymodels.to_tflite(model, quantize="int8", calibration=tinymodels.calibration_data((8, 8, 1)))
    path = tmp_path_factory.mktemp("limits") / "vanishing.tflite"
    path.write_bytes(data)
    return path


def softmax_of(path: Path):
    model = read_model(path)  # a valid file: the reader takes it for every backend
    (op,) = [op for op in model.operators if op.opcode == "SOFTMAX"]
    return op, float(model.tensor(op.inputs[0]).quantization.scale[0])


def test_the_converter_gives_softmax_an_input_scale_below_tflms_limit(vanishing_logits):
    op, scale = softmax_of(vanishing_logits)
    assert op.options["beta"] == 1.0
    assert scale * 2**26 <= 1, scale  # what the tests below rely on


def test_litert_runs_it_through_bench_on_host_cpu(vanishing_logits, tmp_path, capsys):
    out = tmp_path / "report.json"
    code, _, err = run_cli_here(
        capsys, "bench", str(vanishing_logits), "--target", "host-cpu", "--runs", "3", "--warmup", "1",
        "--no-log", "--out", str(out),
    )
    assert code == 0, err
    report = reports.read(out)
    assert report["runner"] == "litert"
    assert report["latency_ms"]["count"] == 3


@pytest.mark.parametrize("backend, family", [("tflm", "TFLM's"), ("aot", "the aot compiler's")])
def test_tflm_and_aot_refuse_it_in_one_line(vanishing_logits, tmp_path, capsys, backend, family):
    op, scale = softmax_of(vanishing_logits)
    out = tmp_path / "report.json"
    code, stdout, err = run_cli_here(
        capsys, "bench", str(vanishing_logits), "--target", "host-cpu", "--backend", backend,
        "--runs", "3", "--warmup", "1", "--no-log", "--out", str(out),
    )
    assert code == 1
    # (TensorFlow, imported by this test process to build the model, logs on stderr too)
    (line,) = [line for line in err.splitlines() if line.startswith("error: ")]
    assert line == (
        f"error: vanishing.tflite: operator {op.index} (SOFTMAX) has beta 1.0 and input scale {scale:.3g}: "
        f"their product is too small for {family} quantized kernel (LiteRT's runs the model: the "
        "tflite backend, on host and Linux targets)"
    )
    assert not out.exists()
