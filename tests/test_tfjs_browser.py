"""TF.js in a browser page: headless Chromium, --serve with its one-time token, and faults within a bound."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest

from edgekit import pipeline, placement, targets
from edgekit.bench.harness import BenchSettings
from edgekit.bench.report import check
from edgekit.bench.run import bench
from edgekit.core import RunOptions
from edgekit.errors import EdgekitError
from edgekit.web import assets
from tests.webtools import Stopwatch, broken_wasm_dir, keras_top1, need_chromium, renderer_processes, web_copy

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def digits_artifact(digits_model):
    need_chromium()
    return pipeline.convert(str(digits_model), "browser-wasm").artifact


def _sample(artifact):
    return {artifact.inputs[0].name: np.zeros((1, *artifact.inputs[0].shape[1:]), np.float32)}


@pytest.mark.slow
def test_mnist_cnn_in_headless_chromium_matches_keras(mnist_cnn):
    need_chromium()
    report = bench(str(mnist_cnn), "browser-wasm", settings=BenchSettings(runs=30, warmup=5, dataset="mnist5k"), log=False)
    check(report)
    assert report["runner"] == "tfjs-wasm"
    assert report["latency_ms"]["source"] == "device"
    env = report["env"]
    assert "HeadlessChrome" in env["user_agent"] and env["hardware_concurrency"] >= 1
    assert env["cross_origin_isolated"] is True  # COOP/COEP served: SharedArrayBuffer, so wasm threads may run
    details = env["runner_details"]
    assert details["backend"] == "wasm" and isinstance(details["simd"], bool)
    assert details["threads_supported"] is True
    assert abs(report["accuracy"]["value"] - keras_top1(mnist_cnn)) * 100 <= 0.2
    assert report["fidelity"]["max_abs_err"] < 1e-4


def test_webgl_reports_the_renderer_the_browser_offered(digits_model):
    need_chromium()
    try:
        report = bench(str(digits_model), "browser-webgl", settings=BenchSettings(runs=3, warmup=1, limit=8), log=False)
    except EdgekitError as error:  # a browser without WebGL: one line that says so
        assert "\n" not in str(error) and "webgl" in str(error).lower()
        return
    details = report["env"]["runner_details"]
    assert details["backend"] == "webgl" and details["renderer"]
    assert isinstance(details["software_renderer"], bool)
    assert report["fidelity"]["max_abs_err"] < 1e-3


# ---------------------------------------------------------------- --serve


def _post(url: str, headers: dict | None = None) -> int:
    request = urllib.request.Request(url, data=b"", headers=headers or {}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_serve_runs_in_the_visitors_browser_and_refuses_posts_without_the_token(digits_model, capsys):
    need_chromium()
    from playwright.sync_api import sync_playwright

    address = "127.0.0.1:0"  # port 0 would not print a usable URL: take a free port first
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    result: dict = {}

    def run():
        try:
            result["report"] = bench(str(digits_model), "browser-wasm", options=RunOptions(serve=address),
                                     settings=BenchSettings(runs=10, warmup=2, dataset="digits", limit=40), log=False)
        except BaseException as exc:  # handed to the test thread
            result["error"] = exc

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    printed, deadline = "", time.monotonic() + 180
    while "token=" not in printed and time.monotonic() < deadline and worker.is_alive():
        time.sleep(0.2)
        printed += capsys.readouterr().err
    url = re.search(r"http://\S+", printed).group(0)
    base, token = url.split("/?token=")

    # a stray visitor: no token, a wrong token
    assert _post(f"{base}/link") == 403
    assert _post(f"{base}/link", {"X-Edgekit-Token": token[:-2] + "xx"}) == 403
    assert _post(f"{base}/fault", {"X-Edgekit-Token": "guess"}) == 403

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=assets.chromium_binary(), args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        page.goto(url)
        page.wait_for_function("document.getElementById('status').textContent.startsWith('Running')", timeout=60_000)
        # the run is taken: the token alone (without the visitor's session key) is refused
        assert _post(f"{base}/link", {"X-Edgekit-Token": token}) == 409
        page.wait_for_function("document.getElementById('status').textContent.startsWith('Done')", timeout=120_000)
        shown = page.inner_text("#result")
        browser.close()
    worker.join(timeout=60)
    assert "error" not in result, result.get("error")
    report = check(result["report"])
    assert report["accuracy"]["n"] == 40 and report["latency_ms"]["count"] == 10
    assert report["env"]["user_agent"] and report["env"]["hardware_concurrency"] >= 1
    assert f"{report['latency_ms']['p50']:.3f}" in shown and report["env"]["user_agent"] in shown
    with pytest.raises(urllib.error.URLError):  # the run is over and its server gone
        urllib.request.urlopen(url, timeout=5)


# ---------------------------------------------------------------- faults


def test_a_page_error_is_one_line_within_a_bound(digits_artifact, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEKIT_WEB_DIR", str(web_copy(tmp_path, {"page.js": "throw new Error('the page broke here');\n"})))
    with Stopwatch() as watch, pytest.raises(EdgekitError) as error:
        placement.place(digits_artifact, targets.get("browser-wasm"), RunOptions(timeout=20))
    assert watch.seconds < 40
    assert "\n" not in str(error.value) and "the page broke here" in str(error.value)


def test_a_page_that_stops_answering_is_reported_after_the_timeout(digits_artifact, tmp_path, monkeypatch):
    hangs = (
        "const token = new URLSearchParams(location.search).get('token');\n"
        "fetch('/link', {method: 'POST', headers: {'X-Edgekit-Token': token}, body: new Uint8Array(0)});\n"
        "// ...and never answers the request that comes back\n"
    )
    monkeypatch.setenv("EDGEKIT_WEB_DIR", str(web_copy(tmp_path, {"page.js": hangs})))
    with Stopwatch() as watch, pytest.raises(EdgekitError, match="did not answer in time"):
        placement.place(digits_artifact, targets.get("browser-wasm"), RunOptions(timeout=3))
    assert watch.seconds < 30


def test_a_wasm_binary_that_will_not_load_is_one_line(digits_artifact, tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEKIT_TFJS_WASM_DIR", str(broken_wasm_dir(tmp_path)))
    with Stopwatch() as watch, pytest.raises(EdgekitError) as error:
        placement.place(digits_artifact, targets.get("browser-wasm"), RunOptions(timeout=20))
    assert watch.seconds < 40
    assert "\n" not in str(error.value) and "wasm backend failed to start" in str(error.value)


def test_a_crashed_browser_page_ends_the_run_within_a_bound(digits_artifact):
    with placement.place(digits_artifact, targets.get("browser-wasm"), RunOptions(timeout=60)) as runner:
        runner.infer(_sample(digits_artifact))
        renderers = renderer_processes()
        assert renderers, "no Chromium renderer found below this process"
        for pid in renderers:
            os.kill(pid, signal.SIGKILL)
        with Stopwatch() as watch, pytest.raises(EdgekitError) as error:
            for _ in range(100):  # the crash reaches the runner at its next request
                runner.infer(_sample(digits_artifact))
                time.sleep(0.1)
    assert watch.seconds < 20
    assert "crashed" in str(error.value) or "went away" in str(error.value)


def test_a_missing_browser_is_one_line_naming_what_to_install(tmp_path, monkeypatch):
    need_chromium()
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("EDGEKIT_CHROMIUM", raising=False)
    with pytest.raises(EdgekitError, match="no Chromium found.*apt-get install chromium"):
        placement.reachable(targets.get("browser-wasm"), RunOptions())
    # --serve needs no browser here: the visitor brings one
    placement.reachable(targets.get("browser-wasm"), RunOptions(serve="127.0.0.1:8765"))


def test_serve_takes_host_colon_port_or_is_a_usage_error(capsys):
    from clitools import run_cli_here

    code, _, err = run_cli_here(capsys, "bench", "model.keras", "--target", "browser-wasm", "--serve", "8765")
    assert code == 2 and "is not HOST:PORT" in err
