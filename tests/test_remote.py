"""Remote devices without a connection: addresses, where a device is named, and the TensorRT pieces
that can be checked without a GPU (the engine recipe, its cache key, trtexec's and the Jetson tools' output)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from clitools import run_cli_here
from edgekit import targets
from edgekit.core import RunOptions
from edgekit.link import device
from edgekit.remote import config
from edgekit.remote.address import AddressError, parse


@pytest.mark.parametrize("text,host,user,port", [
    ("nvidia@192.168.1.20", "192.168.1.20", "nvidia", 22),
    ("root@127.0.0.1:2222", "127.0.0.1", "root", 2222),
    ("jetson.local", "jetson.local", None, 22),
    ("pi@[fe80::1]:2200", "fe80::1", "pi", 2200),
])
def test_addresses(text, host, user, port):
    address = parse(text)
    assert (address.host, address.user, address.port) == (host, user, port)
    assert parse(str(address)) == address


def test_known_hosts_names_match_openssh():
    assert parse("a@h:2222").known_hosts_name() == "[h]:2222" and parse("a@h").known_hosts_name() == "h"
    assert parse("a@h:2222").keyscan() == "ssh-keyscan -p 2222 h"


@pytest.mark.parametrize("text", ["a@", "a@b:0", "a@b:70000", "a b", "a@b:c"])
def test_bad_addresses_are_refused(text):
    with pytest.raises(AddressError):
        parse(text)


def test_a_bad_host_flag_is_a_usage_error(capsys):
    code, _, stderr = run_cli_here(capsys, "bench", "m.tflite", "--target", "rpi4", "--host", "a@b:99999")
    assert code == 2 and "--host" in stderr


def test_a_host_on_a_host_target_is_refused_not_ignored(capsys, tmp_path):
    code, _, stderr = run_cli_here(capsys, "bench", str(tmp_path / "m.tflite"), "--target", "host-cpu", "--host", "pi@10.0.0.2")
    assert code == 1 and "--host pi@10.0.0.2" in stderr and len(stderr.strip().splitlines()) == 1


def test_shipped_targets_name_no_address():
    for target in targets.all_targets():
        assert "host" not in (target.extras.get("ssh") or {}), target.name


@pytest.fixture()
def config_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    (tmp_path / "xdg" / "edgekit").mkdir(parents=True)
    return tmp_path / "xdg" / "edgekit" / "devices.yaml"


def test_no_address_means_the_target_is_refused_before_anything_runs(capsys, tmp_path, config_home):
    code, _, stderr = run_cli_here(capsys, "bench", str(tmp_path / "m.tflite"), "--target", "jetson-orin-nano")
    lines = stderr.strip().splitlines()
    assert code == 1 and len(lines) == 1
    assert "--host" in lines[0] and str(config_home) in lines[0] and "nothing was run" in lines[0]


def test_the_flag_wins_over_the_devices_file_which_wins_over_the_target(tmp_path, config_home):
    config_home.write_text(yaml.safe_dump({"raspberry-pi-4": {"host": "pi@10.0.0.4", "python": "/opt/py/bin/python",
                                                              "timeout": 5, "ssh_key": "~/k"}}))
    rpi4 = targets.get("rpi4")
    from_file = config.device_for(rpi4, RunOptions())
    assert str(from_file.address) == "pi@10.0.0.4" and from_file.python == "/opt/py/bin/python"
    assert from_file.timeout == 5 and from_file.ssh_key.endswith("/k") and "~" not in from_file.ssh_key
    from_flag = config.device_for(rpi4, RunOptions(host="10.0.0.9:2200", device_python="python3.11"))
    assert str(from_flag.address) == "pi@10.0.0.9:2200" and from_flag.python == "python3.11"
    assert config.device_for(targets.get("rpi5"), RunOptions()) is None


def test_a_users_target_file_may_name_its_device(tmp_path, config_home):
    data = yaml.safe_load((targets.targets_dir() / "rpi5.yaml").read_text())
    data["name"] = "lab-pi"
    data["aliases"] = []
    data["extras"]["ssh"] = {"host": "lab@10.1.1.1:2022", "python": "/usr/bin/python3"}
    path = tmp_path / "lab-pi.yaml"
    path.write_text(yaml.safe_dump(data))
    target = targets.get(str(path))
    device_ = config.device_for(target, RunOptions())
    assert target.name == "lab-pi" and str(device_.address) == "lab@10.1.1.1:2022"


def test_a_malformed_devices_file_is_one_line(config_home):
    config_home.write_text(yaml.safe_dump({"rpi4": {"host": "a@b", "port": 22}}))
    with pytest.raises(config.DeviceConfigError, match="unknown key.*port"):
        config.device_for(targets.get("rpi4"), RunOptions())


def test_remote_paths_leave_home_to_the_device():
    from edgekit.remote.ssh import remote_path

    assert remote_path("~/.cache/edgekit device") == "\"$HOME\"/'.cache/edgekit device'"
    assert remote_path("/tmp/x;rm -rf /") == "'/tmp/x;rm -rf /'"


# ------------------------------------------------------------------------------ TensorRT, no GPU


@pytest.fixture(scope="module")
def trt_artifacts(tmp_path_factory):
    pytest.importorskip("tf2onnx")
    from tinymodels import tiny_cnn

    from edgekit import pipeline

    folder = tmp_path_factory.mktemp("trt")
    model = tiny_cnn(seed=4)
    model.save(folder / "tiny.keras")
    np.savez(folder / "cal.npz", x=np.random.default_rng(0).random((40, 8, 8, 1)).astype(np.float32),
             y=np.zeros(40, np.int64))
    convert = lambda q: pipeline.convert(str(folder / "tiny.keras"), "jetson-orin-nano", "tensorrt", q,  # noqa: E731
                                         str(folder / "cal.npz")).artifact
    return {"none": convert("none"), "int8": convert("int8"), "folder": folder}


def test_convert_ships_the_onnx_and_the_engine_recipe(trt_artifacts):
    import onnxruntime as ort

    fp32, int8 = trt_artifacts["none"], trt_artifacts["int8"]
    recipe = json.loads((fp32.path / "engine.json").read_text())
    assert fp32.primary == "model.onnx" and recipe["precision"] == "fp32" and recipe["calibration"] is None
    assert recipe["input_shapes"] == {fp32.inputs[0].name: [1, 8, 8, 1]}
    assert recipe["workspace_bytes"] == 1 << 30
    ort.InferenceSession(str(fp32.primary_path), providers=["CPUExecutionProvider"])  # a loadable ONNX
    recipe8 = json.loads((int8.path / "engine.json").read_text())
    samples = np.load(int8.path / recipe8["calibration"])
    from edgekit import datasets

    expected = datasets.load(str(trt_artifacts["folder"] / "cal.npz")).calibration()  # its training split
    assert recipe8["precision"] == "int8" and samples.dtype == np.float32
    np.testing.assert_array_equal(samples, expected.reshape(samples.shape))
    assert int8.inputs[0].dtype == "float32"  # TensorRT's int8 keeps float I/O


def test_the_engine_cache_key_changes_with_tensorrt_the_gpu_and_the_recipe(trt_artifacts):
    fp32 = trt_artifacts["none"]
    recipe = json.loads((fp32.path / "engine.json").read_text())
    onnx_sha = device._file_sha256(str(fp32.primary_path))
    digest = device.recipe_hash(recipe, onnx_sha)
    assert digest == device.recipe_hash(json.loads(json.dumps(recipe)), onnx_sha)
    keys = {
        device.engine_key("10.3.0", "Orin", digest),
        device.engine_key("10.3.0", "Orin", device.recipe_hash(dict(recipe, precision="fp16"), onnx_sha)),
        device.engine_key("10.3.0", "Orin", device.recipe_hash(dict(recipe, workspace_bytes=1 << 28), onnx_sha)),
        device.engine_key("10.3.0", "Orin", device.recipe_hash(recipe, "0" * 64)),
        device.engine_key("10.3.0", "Orin", device.recipe_hash(recipe, onnx_sha, "1" * 64)),
        device.engine_key("8.6.2", "Orin", digest),
        device.engine_key("10.3.0", "NVIDIA Tegra X1", digest),
    }
    assert len(keys) == 7


def test_tensorrt_artifacts_run_only_on_a_device():
    from edgekit import placement

    assert placement.runs_on("tensorrt") == ("ssh",)
    assert set(placement.targets_for("tensorrt")) == {"jetson-nano", "jetson-orin-nano", "jetson-agx-orin"}


def test_the_fallback_refuses_a_recipe_it_would_not_honour(trt_artifacts):
    from edgekit.errors import EdgekitError
    from edgekit.runners.ssh import choose_runtime

    options = RunOptions(fallback="onnxruntime")
    runtime, _, details = choose_runtime(trt_artifacts["none"], ["onnxruntime"], options, "d")
    assert runtime == "onnxruntime" and "--fallback" in details["fallback"]
    with pytest.raises(EdgekitError, match="int8 recipe"):
        choose_runtime(trt_artifacts["int8"], ["onnxruntime"], options, "d")
    runtime, load, _ = choose_runtime(trt_artifacts["int8"], ["tensorrt", "onnxruntime"], options, "d")
    assert runtime == "tensorrt" and load["files"] == {"calibration": "calibration.npy"}


# A summary in the format trtexec prints (TensorRT 8.6 / 10.x), as documented in NVIDIA's
# "trtexec" performance-summary description; the numbers are made up for this test.
TRTEXEC_LOG = """\
&&&& RUNNING TensorRT.trtexec [TensorRT v100300] # /usr/src/tensorrt/bin/trtexec --loadEngine=m.engine
[11/29/2026-10:11:12] [I] === Device Information ===
[11/29/2026-10:11:12] [I] Selected Device: Orin
[11/29/2026-10:11:12] [I] Compute Capability: 8.7
[11/29/2026-10:11:12] [I] TensorRT version: 10.3.0
[11/29/2026-10:11:15] [I] === Performance summary ===
[11/29/2026-10:11:15] [I] Throughput: 2871.42 qps
[11/29/2026-10:11:15] [I] Latency: min = 0.331055 ms, max = 0.912109 ms, mean = 0.347198 ms, median = 0.342529 ms, percentile(90%) = 0.35376 ms, percentile(95%) = 0.362305 ms, percentile(99%) = 0.43457 ms
[11/29/2026-10:11:15] [I] Enqueue Time: min = 0.0787354 ms, max = 0.28125 ms, mean = 0.0915791 ms, median = 0.0898438 ms, percentile(90%) = 0.0976562 ms, percentile(95%) = 0.104492 ms, percentile(99%) = 0.145508 ms
[11/29/2026-10:11:15] [I] H2D Latency: min = 0.0107422 ms, max = 0.0419922 ms, mean = 0.0121574 ms, median = 0.0117188 ms, percentile(90%) = 0.0131836 ms, percentile(95%) = 0.0141602 ms, percentile(99%) = 0.0185547 ms
[11/29/2026-10:11:15] [I] GPU Compute Time: min = 0.308105 ms, max = 0.852539 ms, mean = 0.322358 ms, median = 0.318359 ms, percentile(90%) = 0.32666 ms, percentile(95%) = 0.333984 ms, percentile(99%) = 0.40332 ms
[11/29/2026-10:11:15] [I] D2H Latency: min = 0.00585938 ms, max = 0.0263672 ms, mean = 0.00768406 ms, median = 0.0078125 ms, percentile(90%) = 0.00878906 ms, percentile(95%) = 0.00927734 ms, percentile(99%) = 0.0136719 ms
[11/29/2026-10:11:15] [I] Total Host Walltime: 3.00056 s
[11/29/2026-10:11:15] [I] Total GPU Compute Time: 2.77386 s
&&&& PASSED TensorRT.trtexec [TensorRT v100300] # /usr/src/tensorrt/bin/trtexec --loadEngine=m.engine
"""


def test_the_trtexec_summary_is_parsed():
    summary = device.parse_trtexec_summary(TRTEXEC_LOG)
    assert summary["gpu_compute_time"] == {"min": 0.308105, "max": 0.852539, "mean": 0.322358, "median": 0.318359,
                                           "p90": 0.32666, "p95": 0.333984, "p99": 0.40332}
    assert summary["h2d_latency"]["median"] == 0.0117188 and summary["d2h_latency"]["p99"] == 0.0136719
    assert summary["latency"]["mean"] == 0.347198 and summary["enqueue_time"]["min"] == 0.0787354
    assert summary["throughput_qps"] == 2871.42 and summary["gpu"] == "Orin"
    assert summary["tensorrt_version"] == "100300"  # the first line names it first


NVPMODEL = """NVPM WARN: fan mode is not set!
NV Power Mode: 15W
0
"""

JETSON_CLOCKS = """SOC family:tegra234  Machine:NVIDIA Jetson Orin Nano Developer Kit
Online CPUs: 0-5
cpu0: Online=1 Governor=schedutil MinFreq=729600 MaxFreq=1510400 CurrentFreq=1510400 IdleStates: WFI=1 c7=1
cpu1: Online=1 Governor=schedutil MinFreq=729600 MaxFreq=1510400 CurrentFreq=729600 IdleStates: WFI=1 c7=1
cpu5: Online=0 Governor=schedutil MinFreq=729600 MaxFreq=1510400 CurrentFreq=729600 IdleStates: WFI=1 c7=1
GPU MinFreq=306000000 MaxFreq=624750000 CurrentFreq=306000000
EMC MinFreq=204000000 MaxFreq=2133000000 CurrentFreq=2133000000 FreqOverride=0
FAN Dynamic Speed control=active hwmon2_pwm1=75
NV Power Mode: 15W
"""


def test_power_mode_and_clocks_are_parsed():
    assert device.parse_nvpmodel(NVPMODEL) == {"power_mode": "15W", "mode_id": 0}
    clocks = device.parse_jetson_clocks(JETSON_CLOCKS)
    assert clocks["machine"] == "NVIDIA Jetson Orin Nano Developer Kit" and clocks["power_mode"] == "15W"
    assert clocks["gpu_hz"] == {"min": 306000000, "max": 624750000, "current": 306000000}
    assert clocks["emc_hz"]["current"] == 2133000000
    assert set(clocks["cpu_khz"]) == {"cpu0", "cpu1"} and clocks["cpu_khz"]["cpu1"]["current"] == 729600


def test_no_jetson_here_means_no_jetson_block():
    if device.jetson_facts():
        pytest.skip("this machine is a Jetson")
    assert "jetson" not in device.environment()


def _gpu_and_tensorrt() -> str | None:
    for module in ("tensorrt", "pycuda.driver"):
        try:
            __import__(module)
        except ImportError:
            return f"{module.split('.')[0]} is not installed (TensorRT runs on an NVIDIA GPU)"
    import pycuda.driver as cuda

    try:
        cuda.init()
        if cuda.Device.count() == 0:
            return "no CUDA GPU"
    except cuda.Error as exc:
        return f"no CUDA GPU ({exc})"
    return None


@pytest.mark.skipif(_gpu_and_tensorrt() is not None, reason=str(_gpu_and_tensorrt()))
@pytest.mark.parametrize("quantization", ["none", "int8"])
def test_tensorrt_builds_caches_and_runs_the_engine(trt_artifacts, quantization):
    artifact = trt_artifacts[quantization]
    recipe = json.loads((artifact.path / "engine.json").read_text())
    files = {"calibration": str(artifact.path / recipe["calibration"])} if recipe["calibration"] else {}
    built = device.TensorRT(str(artifact.primary_path), options={"recipe": recipe, "files": files})
    again = device.TensorRT(str(artifact.primary_path), options={"recipe": recipe, "files": files})
    assert built.details["engine"] == "built" and again.details["engine"] == "cached"
    x = np.random.default_rng(0).random((1, 8, 8, 1)).astype(np.float32)
    out = dict(again.infer({artifact.inputs[0].name: x}))
    assert set(again.last_timing) == {"h2d", "compute", "d2h"}
    import onnxruntime as ort

    expected = ort.InferenceSession(str(artifact.primary_path)).run(None, {artifact.inputs[0].name: x})[0]
    tolerance = 1e-4 if quantization == "none" else 0.1
    np.testing.assert_allclose(out[artifact.outputs[0].name], expected, atol=tolerance)


def test_tensorrt_missing_from_the_device_program_here():
    if device.TensorRT.version():
        pytest.skip("TensorRT is present")
    hello = device.Device("/nonexistent").hello({}, b"")[0]
    assert "tensorrt" not in hello["runtimes"]
    with pytest.raises(RuntimeError, match="no TensorRT"):
        device.TensorRT("m.onnx", options={"recipe": {"inputs": []}})




def test_the_time_request_splits_a_gpu_runtimes_runs_into_its_phases():
    """Device.time collects each run's `last_timing` (what TensorRT's CUDA events give) into breakdown_ms."""

    class PhasedRuntime:  # stands in for the GPU: the phases are whatever its events said
        def __init__(self):
            self.calls = 0

        def infer(self, feed):
            self.calls += 1
            self.last_timing = {"h2d": 0.01 * self.calls, "compute": 0.5, "d2h": 0.02}
            return []

    program = device.Device("/nonexistent")
    program.model, program.feed = PhasedRuntime(), {}
    reply, _ = program.time({"runs": 5, "warmup": 2}, b"")
    assert len(reply["samples_ms"]) == 5 and reply["breakdown_ms"]["clock"] == "cuda events"
    h2d = reply["breakdown_ms"]["h2d"]  # the warm-up runs (h2d 0.01, 0.02) are not in it
    assert h2d["min"] == pytest.approx(0.03) and h2d["max"] == pytest.approx(0.07) and h2d["median"] == pytest.approx(0.05)
    assert reply["breakdown_ms"]["compute"]["mean"] == pytest.approx(0.5)
