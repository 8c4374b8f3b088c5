"""The whole remote path against a real OpenSSH server on loopback.

The device side runs in virtual environments that hold only numpy and one
runtime (onnxruntime, or ai-edge-litert): what a Jetson or a Raspberry Pi
needs, and nothing of edgekit's own dependencies.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import sshd

pytestmark = pytest.mark.skipif(sshd.missing() is not None, reason=sshd.missing() or "")
pytest.importorskip("onnxruntime")
pytest.importorskip("ai_edge_litert")

from clitools import run_cli_here  # noqa: E402
from tinymodels import tiny_float_cnn_bytes, tiny_int8_cnn_bytes  # noqa: E402

BENCH = ("--runs", "20", "--warmup", "2")


@pytest.fixture(scope="session")
def ort_device(device_python):
    """A device with numpy and onnxruntime only."""
    return device_python("onnxruntime")


@pytest.fixture(scope="session")
def litert_device(device_python):
    """A device with numpy and ai-edge-litert only."""
    return device_python("litert")


@pytest.fixture(scope="module")
def server(loopback_sshd):
    return loopback_sshd


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("remote-models")
    for name, data in (("float.tflite", tiny_float_cnn_bytes(seed=11)), ("other.tflite", tiny_float_cnn_bytes(seed=12)),
                       ("int8.tflite", tiny_int8_cnn_bytes(seed=11))):
        (folder / name).write_bytes(data)
    return folder


@pytest.fixture()
def device_cache(tmp_path, monkeypatch):
    """The user's config points the device cache into the test's folder (the device is this machine)."""
    config = tmp_path / "config"
    (config / "edgekit").mkdir(parents=True)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))
    cache = tmp_path / "device-cache"
    _devices(config, {"cache_dir": str(cache)})
    return cache


def _devices(config: Path, entry: dict) -> None:
    import yaml

    text = yaml.safe_dump({name: entry for name in ("jetson-orin-nano", "rpi4")})
    (config / "edgekit" / "devices.yaml").write_text(text)


def _bench_runs() -> int:
    from edgekit.registry import Registry

    tracking = Registry(None)._tracking
    tracking.prepare()
    return len(tracking.client.search_runs([tracking._experiment()], "tags.`edgekit.kind` = 'bench'"))


def _bench(capsys, tmp_path, *args):
    out = tmp_path / "report.json"
    out.unlink(missing_ok=True)  # each call's own report, or none
    code, stdout, stderr = run_cli_here(capsys, "bench", *args, "--out", str(out))
    report = json.loads(out.read_text()) if out.exists() else None
    return code, stdout, stderr, report


def _one_line_failure(code, stderr, report):
    assert code == 1, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert report is None, "a failed benchmark wrote a report"
    return lines[0]


def test_jetson_with_fallback_runs_the_onnx_on_the_device_and_reads_its_env_there(
        capsys, tmp_path, server, models, ort_device, device_cache):
    before = _bench_runs()
    code, stdout, stderr, report = _bench(
        capsys, tmp_path, str(models / "float.tflite"), "--target", "jetson-orin-nano", *server.flags(),
        "--device-python", str(ort_device), "--fallback", "onnxruntime", *BENCH)
    assert code == 0, stderr
    assert report["backend"] == "tensorrt" and report["runner"] == "onnxruntime"
    env = report["env"]
    details = env["runner_details"]
    assert details["execution_provider"] == "CPUExecutionProvider"
    assert "TensorRT" in details["fallback"] or "tensorrt" in details["fallback"]
    assert details["link"] == "ssh" and details["device"] == server.host
    # read by the device program, in the device's environment: its python, only numpy and onnxruntime
    assert env["executable"] == str(ort_device)
    assert set(env["packages"]) == {"numpy", "onnxruntime"}
    assert report["fidelity"]["max_abs_err"] <= 1e-5 and report["fidelity"]["n"] > 0
    assert report["latency_ms"]["source"] == "device" and report["latency_ms"]["count"] == 20
    assert report["memory"]["scope"] == "device-process" and report["memory"]["model_rss_bytes"] > 0
    assert report["quantization"] == "none" and report["artifact"]["info"]["engine_recipe"] == "engine.json"
    assert _bench_runs() == before + 1


def test_without_fallback_the_missing_tensorrt_is_one_line(capsys, tmp_path, server, models, ort_device, device_cache):
    before = _bench_runs()
    code, _, stderr, report = _bench(
        capsys, tmp_path, str(models / "float.tflite"), "--target", "jetson-orin-nano", *server.flags(),
        "--device-python", str(ort_device), *BENCH)
    line = _one_line_failure(code, stderr, report)
    assert "TensorRT is not on" in line and "--fallback onnxruntime" in line
    assert _bench_runs() == before


def test_an_unknown_or_changed_host_key_is_refused_and_says_how_to_trust_it(
        capsys, tmp_path, server, models, ort_device, device_cache):
    other = sshd.keygen(tmp_path / "other_host_key")
    changed = tmp_path / "changed_known_hosts"
    changed.write_text(server.known_hosts_line(other))
    unknown = tmp_path / "empty_known_hosts"
    unknown.write_text("")
    for known, expected in ((changed, "ssh-keygen -f"), (unknown, f"ssh-keyscan -p {server.port} 127.0.0.1")):
        started = time.monotonic()
        code, _, stderr, report = _bench(
            capsys, tmp_path, str(models / "float.tflite"), "--target", "rpi4", "--backend", "onnx",
            *server.flags(known), "--device-python", str(ort_device), *BENCH)
        line = _one_line_failure(code, stderr, report)
        assert expected in line and ("refused" in line or "not accepted" in line), line
        assert time.monotonic() - started < 30
    assert not device_cache.exists(), "nothing may reach a device whose key was not trusted"


def test_rpi4_runs_int8_on_litert_bit_exact_and_sends_each_file_once(
        capsys, tmp_path, server, models, litert_device, device_cache):
    args = (str(models / "int8.tflite"), "--target", "rpi4", *server.flags(), "--device-python", str(litert_device), *BENCH)
    code, _, stderr, report = _bench(capsys, tmp_path, *args)
    assert code == 0, stderr
    assert report["quantization"] == "int8" and report["runner"] == "litert"
    assert report["fidelity"]["bit_exact"] is True and report["fidelity"]["mismatches"] == 0
    assert set(report["env"]["packages"]) == {"numpy", "ai-edge-litert"}
    cached = {p: p.stat().st_mtime_ns for p in device_cache.rglob("*") if p.is_file()}
    assert len(cached) == 2  # the device program and the model, each under its content hash
    code, _, stderr, _ = _bench(capsys, tmp_path, *args)
    assert code == 0, stderr
    assert {p: p.stat().st_mtime_ns for p in device_cache.rglob("*") if p.is_file()} == cached


def test_predict_over_ssh_matches_this_host(capsys, tmp_path, server, models, ort_device, device_cache):
    from edgekit import pipeline

    x = np.random.default_rng(3).standard_normal((5, 8, 8, 1)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    code, _, stderr = run_cli_here(
        capsys, "predict", str(models / "float.tflite"), "--target", "rpi4", "--backend", "onnx", *server.flags(),
        "--device-python", str(ort_device), "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npy"))
    assert code == 0, stderr
    artifact = pipeline.convert(str(models / "float.tflite"), "rpi4", "onnx").artifact
    with pipeline.open_runner(artifact, "host-cpu") as here:
        name = here.outputs[0].name
        expected = np.concatenate([here.infer({here.inputs[0].name: x[i : i + 1]})[name] for i in range(len(x))])
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), expected)


# ------------------------------------------------------------------------------------ faults


def _when_the_program_runs(server, action, settle: float):
    """In the background: once the device program is running (and `settle` s more), do `action`."""

    def watch():
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not server.device_programs():
            time.sleep(0.05)
        time.sleep(settle)
        action()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_a_dropped_connection_ends_in_one_line_and_a_rerun_succeeds(
        capsys, tmp_path, server, models, ort_device, device_cache):
    before = _bench_runs()
    args = (str(models / "float.tflite"), "--target", "rpi4", "--backend", "onnx", *server.flags(),
            "--device-python", str(ort_device))
    watcher = _when_the_program_runs(server, server.kill_sessions, settle=1.0)
    started = time.monotonic()
    code, _, stderr, report = _bench(capsys, tmp_path, *args, "--runs", "2000000", "--warmup", "0")
    watcher.join()
    line = _one_line_failure(code, stderr, report)
    assert "ended" in line or "closed" in line or "connection" in line, line
    assert time.monotonic() - started < 60
    assert _bench_runs() == before, "a failed benchmark was logged"
    assert not [p for p in device_cache.rglob("*.tmp")], "a half-written file was left on the device"
    code, _, stderr, report = _bench(capsys, tmp_path, *args, *BENCH)
    assert code == 0, stderr
    assert _bench_runs() == before + 1


def test_a_device_that_stops_answering_fails_within_its_timeout(
        capsys, tmp_path, server, models, ort_device, device_cache):
    _devices(Path(os.environ["XDG_CONFIG_HOME"]), {"cache_dir": str(device_cache), "timeout": 3})
    stopped = []

    def freeze():  # the device hangs or reboots: nothing answers, nothing closes
        stopped.extend(server.kill_sessions(signal.SIGSTOP))

    watcher = _when_the_program_runs(server, freeze, settle=0.0)
    started = time.monotonic()
    try:
        code, _, stderr, report = _bench(
            capsys, tmp_path, str(models / "float.tflite"), "--target", "rpi4", "--backend", "onnx",
            *server.flags(), "--device-python", str(ort_device), *BENCH)
        elapsed = time.monotonic() - started
    finally:
        watcher.join()
        for pid in stopped:
            for sig in (signal.SIGKILL, signal.SIGCONT):
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
    line = _one_line_failure(code, stderr, report)
    assert "did not answer in time" in line, line
    assert elapsed < 30


def test_a_missing_runtime_or_python_is_one_line(capsys, tmp_path, server, models, litert_device, device_cache):
    args = (str(models / "float.tflite"), "--target", "rpi4", "--backend", "onnx", *server.flags(), *BENCH)
    code, _, stderr, report = _bench(capsys, tmp_path, *args, "--device-python", str(litert_device))
    line = _one_line_failure(code, stderr, report)
    assert "onnxruntime is not on" in line and "pip install onnxruntime" in line and "litert" in line, line
    code, _, stderr, report = _bench(capsys, tmp_path, *args, "--device-python", str(tmp_path / "no-python"))
    line = _one_line_failure(code, stderr, report)
    assert "exit code 127" in line, line


@pytest.fixture()
def small_disk(tmp_path):
    """A 512 KiB tmpfs for the device cache: a disk that can really fill up."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=512k", "tmpfs", str(mount)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {(done.stderr or '').strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_on_the_device_is_one_line_and_leaves_nothing_half_written(
        capsys, tmp_path, server, models, ort_device, device_cache, small_disk):
    _devices(Path(os.environ["XDG_CONFIG_HOME"]), {"cache_dir": str(small_disk / "cache")})
    common = ("--target", "rpi4", "--backend", "onnx", *server.flags(), "--device-python", str(ort_device), *BENCH)
    code, _, stderr, _ = _bench(capsys, tmp_path, str(models / "float.tflite"), *common)
    assert code == 0, stderr
    free = os.statvfs(small_disk)
    filler = small_disk / "filler"
    with open(filler, "wb") as f:  # leave less room than the next model needs
        f.write(b"\0" * max(0, free.f_bavail * free.f_frsize - 1024))
    before = _bench_runs()
    code, _, stderr, report = _bench(capsys, tmp_path, str(models / "other.tflite"), *common)
    line = _one_line_failure(code, stderr, report)
    assert "No space left on device" in line, line
    assert _bench_runs() == before
    assert [p.name for p in (small_disk / "cache").iterdir() if p.name.endswith(".tmp")] == []
    filler.unlink()
    code, _, stderr, report = _bench(capsys, tmp_path, str(models / "other.tflite"), *common)
    assert code == 0, stderr
    assert _bench_runs() == before + 1
