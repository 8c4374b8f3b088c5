"""Compare on reports `edgekit bench` really wrote, and the registry's runs read back.

One session fixture benchmarks one small CNN on this host three times: twice
the same way (LiteRT), once with a deliberate slowdown (the same model
compiled to plain C by the aot backend, tens of times slower), and, where the
Cortex-M toolchain and QEMU are installed, twice the same way on the emulated
board. The slowdown must break `--fail-on "p50>+5%"`. Two runs of the same
thing must not: that is checked on the board's clock, which counts
instructions. On a shared host two runs of the same thing can differ by tens
of percent (other people's jobs change the CPU's speed between runs), and a
host-clock gate can only be as quiet as the machine it runs on.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from browser import open_page
from clitools import run_cli_here as run_cli
from edgekit.compare import compare_files

MODEL = "compare-cnn"


def _edgekit(*args: str) -> str:
    """`edgekit ARGS` in this process (TensorFlow is loaded once for the session); its stdout."""
    from edgekit.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(list(args))
        except SystemExit as exc:
            if exc.code:
                raise AssertionError(f"edgekit {' '.join(args)}: exit {exc.code}: {err.getvalue()}") from None
    return out.getvalue()


def _cnn_bytes() -> bytes:
    """A small float CNN on 28x28 digits: about 0.1 ms per inference with LiteRT on one core."""
    import tf_keras as keras
    from tinymodels import _seeded_weights, to_tflite

    layers = keras.layers
    inputs = keras.Input((28, 28, 1), batch_size=1)
    x = layers.Conv2D(16, 3, padding="same", activation="relu")(inputs)
    x = layers.Conv2D(16, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D(2)(x)
    x = layers.Conv2D(32, 3, padding="same", activation="relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Softmax()(layers.Dense(10)(x))
    model = keras.Model(inputs, outputs)
    _seeded_weights(model, 0)
    return to_tflite(model)


@pytest.fixture(scope="session")
def bench_reports(tmp_path_factory, session_registry):
    """{"same-1", "same-2", "slow"}: report paths, also logged in the session registry."""
    pytest.importorskip("ai_edge_litert")
    folder = tmp_path_factory.mktemp("compare-real")
    model = folder / "cnn.tflite"
    model.write_bytes(_cnn_bytes())
    _edgekit("register", str(model), "--name", MODEL, "--dataset", "mnist5k")
    paths = {}
    for name, backend in (("same-1", "tflite"), ("same-2", "tflite"), ("slow", "aot")):
        paths[name] = folder / f"{name}.json"
        _edgekit("bench", MODEL, "--target", "host-cpu", "--backend", backend, "--runs", "100",
                 "--warmup", "10", "--limit", "100", "--out", str(paths[name]))
    if all(shutil.which(tool) for tool in ("qemu-system-arm", "arm-none-eabi-gcc", "cmake")):
        for name in ("board-1", "board-2"):
            paths[name] = folder / f"{name}.json"
            _edgekit("bench", MODEL, "--target", "mps2-an386", "--backend", "aot", "--runs", "10",
                     "--warmup", "1", "--limit", "20", "--no-log", "--out", str(paths[name]))
    return paths


@pytest.mark.slow
def test_a_deliberate_slowdown_breaks_the_gate(bench_reports, capsys):
    slow = [str(bench_reports["same-1"]), str(bench_reports["slow"])]
    code, out, err = run_cli(capsys, "compare", *slow, "--fail-on", "p50>+5%")
    assert code == 1
    assert err.startswith("error: 1 gate broken: slow.json broke p50>+5% (")
    assert "95% CI" in err and err.count("\n") == 1

    data = compare_files([bench_reports["same-1"], bench_reports["slow"]]).to_json()
    p50 = next(row for row in data["rows"] if row["key"] == "latency_ms.p50")
    reports = [json.loads(bench_reports[n].read_text()) for n in ("same-1", "slow")]
    assert p50["values"] == [r["latency_ms"]["p50"] for r in reports]
    interval = p50["deltas"][1]["ci"]
    assert interval["significant"] and interval["relative"][0] > 0.05
    assert interval["relative"][0] <= p50["deltas"][1]["relative"] <= interval["relative"][1]


@pytest.mark.slow
def test_two_runs_of_the_same_thing_do_not_break_the_gate(bench_reports, capsys):
    if "board-1" not in bench_reports:
        pytest.skip("needs qemu-system-arm, arm-none-eabi-gcc and cmake for the emulated board")
    same = [str(bench_reports["board-1"]), str(bench_reports["board-2"])]
    code, out, err = run_cli(capsys, "compare", *same, "--fail-on", "p50>+5%", "--fail-on", "p99>+5%")
    assert code == 0, err
    assert "p50>+5%: 1 passed" in out and "p99>+5%: 1 passed" in out
    rows = {line.split("  ")[0]: line for line in out.splitlines()}
    assert "no significant change" in rows["latency p50 (ms)"]
    # the board's clock against the host's: shown side by side, never subtracted, never gated
    mixed = [str(bench_reports["same-1"]), str(bench_reports["board-1"])]
    code, out, err = run_cli(capsys, "compare", *mixed, "--fail-on", "p50>+5%")
    assert code == 0, err
    assert "not checked: latency not comparable with the baseline's: host clock vs device clock" in out
    assert "(not comparable)" in out


@pytest.mark.slow
def test_reports_read_back_from_the_registry_are_the_files(bench_reports, capsys):
    code, out, err = run_cli(capsys, "compare", "--model", MODEL, "--target", "host", "--json")
    assert code == 0, err
    data = json.loads(out)
    files = [json.loads(bench_reports[n].read_text()) for n in ("same-1", "same-2", "slow")]
    p50 = next(row for row in data["rows"] if row["key"] == "latency_ms.p50")
    assert p50["values"] == [r["latency_ms"]["p50"] for r in files]  # oldest run first
    assert [c["backend"] for c in data["columns"]] == ["tflite", "tflite", "aot"]
    assert all(c["path"].startswith("runs:/") for c in data["columns"])
    # a run id picks the baseline
    run_id = data["columns"][2]["path"].split("/")[1]
    code, out, _ = run_cli(capsys, "compare", "--model", f"{MODEL}:1", "--baseline", run_id[:10], "--json")
    assert code == 0 and json.loads(out)["baseline"] == 2
    code, _, err = run_cli(capsys, "compare", "--model", MODEL, "--target", "mps2-an386")
    assert code == 1 and err == "error: no report was benchmarked on mps2-an386; the reports are from: host-cpu\n"
    code, _, err = run_cli(capsys, "compare", "--model", "no-such-model")
    assert code == 1 and "no-such-model" in err


@pytest.mark.slow
def test_the_page_of_real_reports_opens_offline_with_every_chart(bench_reports, tmp_path, capsys):
    page_file = tmp_path / "compare.html"
    paths = [str(bench_reports["same-1"]), str(bench_reports["slow"])]
    code, out, err = run_cli(capsys, "compare", *paths, "--html", str(page_file))
    assert code == 0, err
    requested, charts = open_page(page_file, tmp_path / "compare.png")
    assert requested == [page_file.resolve().as_uri()]
    assert [c["name"] for c in charts] == ["latency", "pareto", "memory"]
    for chart in charts:
        assert chart["width"] > 400 and chart["height"] > 100 and chart["shapes"] > 20, chart["name"]
        assert "no report has" not in chart["text"], chart["name"]
    assert "same-1.json" in charts[0]["text"] and "slow.json" in charts[0]["text"]
    assert "Pareto front" in charts[1]["text"]
    assert "resident memory" in charts[2]["text"]


def _read_line(process: subprocess.Popen, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    line = ""
    os.set_blocking(process.stdout.fileno(), False)
    while time.monotonic() < deadline and process.poll() is None:
        chunk = process.stdout.readline()
        line += chunk or ""
        if line.endswith("\n"):
            return line
        time.sleep(0.2)
    raise AssertionError(f"no URL within {timeout} s; exit code {process.poll()}; stderr: {process.stderr.read()}")


@pytest.mark.slow
def test_ui_serves_mlflow_on_the_registry_over_loopback_and_stops(bench_reports, session_registry):
    process = subprocess.Popen(
        [sys.executable, "-m", "edgekit", "ui", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "EDGEKIT_REGISTRY": str(session_registry)},
    )
    try:
        line = _read_line(process, timeout=180)
        assert line.startswith(f"MLflow UI on registry {session_registry}: http://127.0.0.1:")
        url = line.split(": ", 1)[1].split()[0]
        with urllib.request.urlopen(url, timeout=30) as response:
            assert response.status == 200 and "text/html" in response.headers["Content-Type"]
        with urllib.request.urlopen(f"{url}/ajax-api/2.0/mlflow/experiments/get-by-name"
                                    "?experiment_name=edgekit", timeout=30) as response:
            experiment = json.loads(response.read())["experiment"]["experiment_id"]
        search = urllib.request.Request(
            f"{url}/ajax-api/2.0/mlflow/runs/search", method="POST",
            headers={"Content-Type": "application/json"},
            data=json.dumps({"experiment_ids": [experiment], "max_results": 1000,
                             "filter": f"tags.`edgekit.kind` = 'bench' and tags.`edgekit.model` = '{MODEL}'"}).encode(),
        )
        with urllib.request.urlopen(search, timeout=30) as response:
            runs = json.loads(response.read())["runs"]
        assert len(runs) == 3  # the benchmarks this session logged
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=60)
    assert code == 0
    with pytest.raises(OSError):  # the server is gone with it
        urllib.request.urlopen(url, timeout=5)


def test_ui_on_an_empty_registry_or_a_taken_port_is_one_line(tmp_path, capsys, session_registry):
    code, _, err = run_cli(capsys, "--registry", str(tmp_path / "empty"), "ui")
    assert code == 1 and err.startswith("error: registry ") and "is empty" in err
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        (tmp_path / "reg").mkdir()
        (tmp_path / "reg" / "mlflow.db").write_bytes(b"")  # records exist: the port is checked next
        code, _, err = run_cli(capsys, "--registry", str(tmp_path / "reg"), "ui", "--port", str(port))
    assert code == 1 and err == f"error: port {port} on 127.0.0.1 is in use: pass another with --port (0 picks a free one)\n"
