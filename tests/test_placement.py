"""Placement: a report comes from the device it names, or the command refuses."""

from __future__ import annotations

import pytest

pytest.importorskip("ai_edge_litert")

from clitools import run_cli_here  # noqa: E402
from tinymodels import tiny_float_cnn_bytes, tiny_int8_cnn_bytes  # noqa: E402

from edgekit import backends, placement, targets  # noqa: E402
from edgekit.core import RunOptions  # noqa: E402


@pytest.fixture(scope="module")
def float_tflite(tmp_path_factory):
    path = tmp_path_factory.mktemp("placement") / "tiny_float.tflite"
    path.write_bytes(tiny_float_cnn_bytes(seed=3))
    return path


@pytest.fixture(scope="module")
def int8_tflite(tmp_path_factory):
    path = tmp_path_factory.mktemp("placement") / "tiny_int8.tflite"
    path.write_bytes(tiny_int8_cnn_bytes(seed=3))
    return path


def _refused(capsys, tmp_path, *args):
    out = tmp_path / "report.json"
    code, stdout, stderr = run_cli_here(capsys, "bench", *args, "--runs", "2", "--warmup", "0", "--out", str(out))
    assert code == 1, stdout + stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert not out.exists(), "a refused benchmark wrote a report"
    assert list(tmp_path.iterdir()) == [], "a refused benchmark left files behind"
    return lines[0]


@pytest.mark.parametrize("target", ["jetson-orin-nano", "rpi4"])
def test_a_device_that_cannot_be_reached_is_refused_not_run_here(capsys, tmp_path, float_tflite, target):
    line = _refused(capsys, tmp_path, str(float_tflite), "--target", target)
    assert target in line and "ssh" in line


def test_a_board_on_a_serial_port_needs_the_port(capsys, tmp_path, int8_tflite):
    line = _refused(capsys, tmp_path, str(int8_tflite), "--target", "nucleo-l4r5zi", "--backend", "aot")
    assert "--port" in line and "host-cpu" in line


def test_a_port_on_a_host_target_is_refused(capsys, tmp_path, float_tflite):
    line = _refused(capsys, tmp_path, str(float_tflite), "--target", "host-cpu", "--port", "/dev/ttyACM0")
    assert "--port" in line


def test_a_backend_that_cannot_run_where_the_target_runs_lists_what_would(tmp_path, float_tflite):
    from edgekit import pipeline

    artifact = pipeline.convert(str(float_tflite), "host-cpu", "tflite").artifact
    with pytest.raises(placement.PlacementError) as caught:
        placement.place(artifact, targets.get("mps2-an386"), RunOptions())
    message = str(caught.value)
    assert "tflite" in message and "mps2-an386" in message and "host-cpu" in message
    assert "\n" not in message


def test_every_shipped_target_places_through_a_known_runner_kind():
    for target in targets.all_targets():
        assert target.runner in placement.RUNNER_KINDS, target.name
        runnable = [b for b in target.backends if b in backends.names() and target.runner in placement.runs_on(b)]
        installed = [b for b in target.backends if b in backends.names()]
        # a target whose backends are installed has at least one that can run where it runs
        assert runnable or not installed, f"{target.name}: no backend runs on '{target.runner}'"


def test_the_host_target_runs_here(float_tflite):
    from edgekit import pipeline

    artifact = pipeline.convert(str(float_tflite), "host-cpu", "tflite").artifact
    with placement.place(artifact, targets.get("host-cpu"), RunOptions()) as runner:
        assert runner.name == "litert" and runner.memory_scope == "host-process"
