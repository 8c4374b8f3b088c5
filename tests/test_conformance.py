"""Every backend, on every runner kind it declares: convert a tiny model, run it there, one report schema.

A backend that adds a runner kind to `runs_on`, or a new runner kind, must
add how to reach it here (KIND_SETUPS); a kind this edgekit has no runner
module for must be refused by placement in one line.
"""

from __future__ import annotations

import os
import shutil

import pytest

pytest.importorskip("ai_edge_litert")

from tinymodels import tiny_int8_cnn_bytes  # noqa: E402

from edgekit import backends, placement  # noqa: E402
from edgekit.bench import report as reports  # noqa: E402
from edgekit.bench.harness import BenchSettings  # noqa: E402
from edgekit.bench.run import bench  # noqa: E402
from edgekit.core import RunOptions  # noqa: E402


def _host(backend, request):
    return "host-cpu", RunOptions(threads=1)


def _qemu(backend, request):
    if shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("qemu-system-arm and arm-none-eabi-gcc are needed for the emulated board")
    if backend == "tflm" and not os.environ.get("TFLM_DIR"):
        pytest.skip("TFLM firmware builds from a TFLM tree: TFLM_DIR not set")
    return "mps2-an386", RunOptions()


def _node(backend, request):
    from edgekit.web import assets

    try:
        assets.node_binary(), assets.js_folder()
    except Exception as missing:
        pytest.skip(f"Node.js runner not available here: {missing}")
    return "node-wasm", RunOptions(threads=1)


def _browser(backend, request):
    from edgekit.web import assets

    try:
        assets.js_folder(), assets.chromium_binary(), assets.playwright_sync()
    except Exception as missing:
        pytest.skip(f"browser runner not available here: {missing}")
    return "browser-wasm", RunOptions(threads=1)


def _serial(backend, request):
    port = os.environ.get("EDGEKIT_HW_PORT")
    if not port:
        pytest.skip("a real board on a serial port: set EDGEKIT_HW_PORT and EDGEKIT_HW_TARGET")
    return os.environ.get("EDGEKIT_HW_TARGET", "nucleo-l4r5zi"), RunOptions(port=port)


def _ssh(backend, request):
    if backend == "tensorrt":
        pytest.skip("TensorRT runs where TensorRT and an NVIDIA GPU are (see tests/test_remote.py)")
    server = request.getfixturevalue("loopback_sshd")
    python = request.getfixturevalue("device_python")({"tflite": "litert", "onnx": "onnxruntime"}[backend])
    config = request.getfixturevalue("tmp_path") / "config"
    (config / "edgekit").mkdir(parents=True)
    (config / "edgekit" / "devices.yaml").write_text(f"rpi4: {{cache_dir: {config.parent / 'device-cache'}}}\n")
    request.getfixturevalue("monkeypatch").setenv("XDG_CONFIG_HOME", str(config))
    return "rpi4", RunOptions(host=server.host, ssh_key=str(server.client_key),
                              known_hosts=str(server.known_hosts), device_python=str(python))


#: runner kind -> how this suite reaches a place of that kind: (target, options)
KIND_SETUPS = {"host": _host, "qemu": _qemu, "serial": _serial, "ssh": _ssh, "node": _node, "browser": _browser}
#: backends that cannot take the tiny .tflite get the same model as Keras
KERAS_SOURCE = {"tfjs"}
#: kinds whose program can read its own resident set (a browser page cannot)
RESIDENT_SET_READABLE = {"host", "ssh", "node"}
#: where each kind's memory figures come from, and whose clock times it
EXPECTED = {
    "host": ("host-process", "host"),
    "qemu": ("device", "device"),
    "serial": ("device", "device"),
    "ssh": ("device-process", "device"),
    "node": ("device-process", "device"),
    "browser": ("device-process", "device"),
}

PAIRS = [(b, kind) for b in backends.names() for kind in backends.get(b).runs_on]


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    from tinymodels import tiny_cnn

    folder = tmp_path_factory.mktemp("conformance")
    (folder / "tiny_int8.tflite").write_bytes(tiny_int8_cnn_bytes(seed=7))
    tiny_cnn(seed=7).save(folder / "tiny.keras")
    return folder


def test_every_declared_kind_is_a_placement_kind():
    for backend, kind in PAIRS:
        assert kind in placement.RUNNER_KINDS, f"backend {backend} declares unknown runner kind {kind}"


@pytest.mark.parametrize("backend,kind", PAIRS, ids=[f"{b}-{k}" for b, k in PAIRS])
def test_backend_runs_on_its_kind_and_reports_in_the_one_schema(tiny_models, tmp_path, backend, kind, request):
    if placement._module(kind) is None:
        from edgekit import targets

        target = next(t for t in targets.all_targets() if t.runner == kind)
        with pytest.raises(placement.PlacementError) as caught:
            placement.reachable(target)
        assert "\n" not in str(caught.value) and target.name in str(caught.value)
        return
    assert kind in KIND_SETUPS, f"runner kind {kind} exists: add how to reach it to KIND_SETUPS"
    target, options = KIND_SETUPS[kind](backend, request)
    out = tmp_path / "report.json"
    settings = BenchSettings(runs=3, warmup=1, limit=4)
    model = tiny_models / ("tiny.keras" if backend in KERAS_SOURCE else "tiny_int8.tflite")
    report = bench(str(model), target, backend=backend, settings=settings, options=options, out=out, log=False)
    assert reports.read(out) == report  # valid, and what was written is what was returned
    scope, clock = EXPECTED[kind]
    assert report["backend"] == backend and report["target"]["runner"] == kind
    assert report["memory"]["scope"] == scope and report["latency_ms"]["source"] == clock
    assert report["latency_ms"]["count"] == 3 and report["fidelity"]["n"] == 4
    assert "peak_rss_bytes" not in report["memory"], "the benchmarking process's peak is not the model's"
    memory = report["memory"]
    if scope == "device":  # a board reports its own memory, never this host's
        assert "model_rss_bytes" not in memory and memory["flash_bytes"] > 0
    elif kind in RESIDENT_SET_READABLE:  # this process, or a device program that can read its own RSS
        assert memory.get("model_rss_bytes", -1) >= 0 and memory["model_rss_basis"] in ("peak", "end"), memory
    else:  # a browser page cannot see its resident set: it says what it can (JS heap, tensor bytes)
        assert set(memory) - {"scope"} and "model_rss_bytes" not in memory, memory
