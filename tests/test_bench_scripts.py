"""The bench/ scripts behind BENCHMARKS.md leave edgekit.report/1 files that `edgekit compare` reads.

Each script runs in a fresh process, in its quick settings, on a tiny int8
CNN; its tables must be made of the numbers in the files it wrote.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from clitools import run_cli
from edgekit.bench import report as reports

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    from tinymodels import tiny_int8_cnn_bytes

    path = tmp_path_factory.mktemp("model") / "tiny_cnn.tflite"
    path.write_bytes(tiny_int8_cnn_bytes())
    return path


def run_script(name: str, *args: str, cwd: Path) -> str:
    # the session's registry: its database exists already, so no script has to create one
    args = (*args, "--registry", os.environ["EDGEKIT_REGISTRY"])
    env = os.environ | {"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / name), *args], capture_output=True, text=True, cwd=cwd, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def compared(files: list[Path]) -> str:
    """`edgekit compare` on the files, through the CLI: it must read every one."""
    code, out, err = run_cli("compare", *map(str, files))
    assert code == 0, err
    for f in files:
        assert f.name in out
    return out


def written(folder: Path, names: list[str]) -> list[Path]:
    files = sorted(folder.glob("*.json"))
    assert [f.name for f in files] == sorted(names)
    for f in files:
        report = reports.read(f)  # a valid edgekit.report/1
        assert not Path(report["model"]["path"]).is_absolute()  # no checkout path in committed reports
    return files


def table_row(out: str, model: str) -> list[str]:
    row = next(line for line in out.splitlines() if line.startswith(f"| {model} "))
    return [cell.strip() for cell in row.strip("|").split("|")]


def test_harness_overhead_reports(tiny_model, tmp_path):
    out = run_script("harness_overhead.py", str(tiny_model), "--runs", "30", "--rounds", "2",
                     "--out", str(tmp_path / "r"), cwd=tiny_model.parent)  # fmt: skip
    files = written(tmp_path / "r", ["tiny_cnn-host-cpu-tflite-bare.json", "tiny_cnn-host-cpu-tflite.json"])
    bare, ours = (reports.read(tmp_path / "r" / n)["latency_ms"] for n in
                  ("tiny_cnn-host-cpu-tflite-bare.json", "tiny_cnn-host-cpu-tflite.json"))  # fmt: skip
    assert bare["count"] == ours["count"] == 60 and ours["rounds"] == 2
    row = table_row(out, "tiny_cnn.tflite")
    assert row[1:4] == [f"{bare['p50']:.4f}", f"{ours['p50']:.4f}", f"{ours['p50'] / bare['p50']:.3f}"]
    text = compared(files)
    assert "litert-bare" in text and "litert" in text


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None, reason="no host C compiler")
def test_aot_host_reports(tiny_model, tmp_path):
    out = run_script("aot_host.py", str(tiny_model), "--runs", "20", "--rounds", "2",
                     "--out", str(tmp_path / "r"), cwd=tiny_model.parent)  # fmt: skip
    names = [f"tiny_cnn-host-cpu-{b}.json" for b in ("aot", "tflite", "tflm")]
    files = written(tmp_path / "r", names)
    aot, litert, tflm = (reports.read(tmp_path / "r" / n) for n in names)
    assert aot["fidelity"]["bit_exact"] is True  # the bundle matches TFLM bit for bit
    assert (aot["runner"], litert["runner"], tflm["runner"]) == ("aot-host", "litert", "tflm-host")
    assert litert["env"]["threads"] == 1
    p50 = {k: r["latency_ms"]["p50"] for k, r in (("aot", aot), ("tflite", litert), ("tflm", tflm))}
    row = table_row(out, "tiny_cnn.tflite")
    assert row[1:6] == [f"{p50['aot']:.4f}", f"{p50['tflite']:.4f}", f"{p50['tflm']:.3f}",
                        f"{p50['aot'] / p50['tflite']:.2f}", f"{p50['tflm'] / p50['aot']:.0f}"]  # fmt: skip
    assert row[6] == f"{aot['memory']['arena_bytes']:,}"
    assert row[7] == f"{tflm['memory']['arena_measured_bytes']:,}"
    for name in names:
        assert f"`{name}`" in out  # the text names the files its numbers come from
    compared(files)


def test_tflm_memory_reports(tiny_model, tmp_path):
    out = run_script("tflm_memory.py", str(tiny_model), "--runs", "2", "--out", str(tmp_path / "r"),
                     cwd=tiny_model.parent)  # fmt: skip
    (path,) = written(tmp_path / "r", ["tiny_cnn-host-cpu-tflm-nucleo.json"])
    report = reports.read(path)
    info = report["artifact"]["info"]
    assert report["target"]["name"] == "host-cpu" and report["runner"] == "tflm-host"
    assert info["fit"]["target"] == "nucleo-l4r5zi"  # what the conversion predicted for the board
    row = table_row(out, "tiny_cnn.tflite")
    assert row[1:3] == [f"{info['arena_measured_bytes']:,}", f"{info['arena_bytes']:,}"]
    assert row[5] == f"{info['fit']['flash_bytes']:,}"
    compared([path])


@pytest.mark.skipif(
    not (shutil.which("qemu-system-arm") and shutil.which("arm-none-eabi-gcc")),
    reason="needs qemu-system-arm and arm-none-eabi-gcc",
)
def test_firmware_qemu_reports(tiny_model, tmp_path):
    out = run_script("firmware_qemu.py", str(tiny_model), "--target", "mps2-an386", "--runs", "1", "--limit", "2",
                     "--out", str(tmp_path / "r"), cwd=tiny_model.parent)  # fmt: skip
    names = ["tiny_cnn-mps2-an386-aot-c.json", "tiny_cnn-mps2-an386-aot-dsp.json",
             "tiny_cnn-mps2-an386-aot-dsp-size.json", "tiny_cnn-mps2-an386-aot-dsp-speed.json"]  # fmt: skip
    files = written(tmp_path / "r", names)
    by_variant = {f.name.removeprefix("tiny_cnn-mps2-an386-aot-").removesuffix(".json"): reports.read(f) for f in files}
    c, dsp, size, speed = (by_variant[v] for v in ("c", "dsp", "dsp-size", "dsp-speed"))
    modes = {r["artifact"]["info"]["optimize"] for r in (dsp, size, speed)}
    assert modes == {"balanced", "size", "speed"} and all(r["fidelity"]["bit_exact"] for r in (size, speed))
    assert f"{int(size['device']['instructions']):,}" in out and "by `--optimize`" in out
    assert c["artifact"]["info"]["dsp"] is False and dsp["artifact"]["info"]["dsp"] is True
    for r in (c, dsp):
        assert r["target"]["name"] == "mps2-an386" and r["latency_ms"]["source"] == "device"
        assert r["fidelity"]["bit_exact"] is True and r["fidelity"]["n"] == 2
    row = table_row(out, "tiny_cnn")
    assert row[3:5] == [f"{int(c['device']['instructions']):,}", f"{int(dsp['device']['instructions']):,}"]
    # the bundle's own flash beside the firmware's, per mode, as a multiple of the model's weights
    from edgekit.aot.fit import model_weight_bytes

    own = size["memory"]["firmware"]["model_flash_bytes"]
    assert model_weight_bytes(tiny_model) < own < size["memory"]["flash_bytes"]
    modes_row = [line for line in out.splitlines() if line.startswith("| tiny_cnn |")][-1]
    assert f"| {own:,} | {own / model_weight_bytes(tiny_model):.3f} | {size['memory']['flash_bytes']:,} |" in modes_row
    text = compared(files)
    assert "instructions" in text


def test_benchmarks_cite_only_valid_reports():
    """Every report file BENCHMARKS.md names is committed and is a valid edgekit.report/1."""
    text = (REPO / "BENCHMARKS.md").read_text()
    cited = set(re.findall(r"`(bench/reports/[^`]+\.json)`", text))
    assert cited, "BENCHMARKS.md names no report files"
    for rel in sorted(cited):
        report = reports.read(REPO / rel)
        assert json.loads((REPO / rel).read_text())["schema"] == reports.SCHEMA
        assert not Path(report["model"]["path"]).is_absolute()
