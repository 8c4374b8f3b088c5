"""`edgekit compare`: report loading, the table, deltas, JSON and HTML output."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

from edgekit import compare
from edgekit.errors import EdgekitError
from clitools import run_cli_here as run_cli


def host_report(**changes) -> dict:
    report = {
        "schema": "edgekit.report/1",
        "model": {"name": "kws", "version": 2, "format": "keras", "sha256": "ab" * 32, "path": "kws.keras"},
        "target": {"name": "host-cpu", "kind": "host"},
        "backend": "tflite",
        "quantization": "none",
        "runner": "host",
        "artifact": {"sha256": "cd" * 32, "path": "a", "recipe_key": "ef" * 32, "files": ["model.tflite"]},
        "latency_ms": {"count": 3, "mean": 0.65, "std": 0.02, "min": 0.6, "p50": 0.61, "p90": 0.7,
                       "p95": 0.8, "p99": 0.9, "max": 0.9, "first": 3.0, "samples": [0.6, 0.61, 0.9],
                       "source": "host"},
        "throughput_ips": 1600.0,
        "memory": {"peak_rss_bytes": 400 << 20},
        "accuracy": {"dataset": "speech_commands", "metric": "top1", "value": 0.9, "n": 1000},
        "fidelity": {"reference": "source", "max_abs_err": 0.0, "mean_abs_err": 0.0,
                     "cosine": 1.0, "argmax_agreement": 1.0},
        "env": {"python": "3.11"},
        "created_at": "2026-01-01T00:00:00Z",
    }
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(report.get(key), dict):
            report[key] = report[key] | value
        else:
            report[key] = value
    return report


def mcu_report() -> dict:
    return host_report(
        target={"name": "mps2-an386", "kind": "mcu"},
        backend="aot",
        quantization="int8",
        runner="qemu",
        latency_ms={"p50": 0.42, "p90": 0.42, "p99": 0.42, "mean": 0.42, "source": "device"},
        throughput_ips=800.0,
        memory={"peak_rss_bytes": 40 << 20, "arena_bytes": 24 << 10, "flash_bytes": 70 << 10,
                "ram_bytes": 30 << 10},
        accuracy={"value": 0.88},
        fidelity={"max_abs_err": 0.0039, "mean_abs_err": 0.0001, "cosine": 0.9999,
                  "argmax_agreement": 0.99, "bit_exact": True, "mismatches": 0},
        device={"instructions": 10_500_000, "cycles": 10_500_000},
    )


def write(folder: Path, name: str, report) -> Path:
    path = folder / name
    path.write_text(report if isinstance(report, str) else json.dumps(report))
    return path


def rows_by_label(text: str) -> dict[str, list[str]]:
    """Split the text table into cells (columns are separated by two or more spaces)."""
    return {cells[0]: cells[1:] for cells in (re.split(r"\s{2,}", line.strip()) for line in text.splitlines())}


# ----------------------------------------------------------------- the table


def test_table_has_one_column_per_report_with_deltas_against_the_first(tmp_path):
    a = write(tmp_path, "host.json", host_report())
    b = write(tmp_path, "mcu.json", mcu_report())
    text = compare.render_text(compare.compare_files([a, b]))
    rows = rows_by_label(text)
    assert rows["report"] == ["host.json (baseline)", "mcu.json"]
    assert rows["model"] == ["kws v2", "kws v2"]
    assert rows["target"] == ["host-cpu", "mps2-an386"]
    assert rows["backend"] == ["tflite", "aot"]
    assert rows["quantization"] == ["none", "int8"]
    assert rows["runner"] == ["host", "qemu"]
    # a host clock against a device clock: shown, never subtracted
    assert rows["latency p50 (ms)"] == ["0.610", "0.420 (not comparable)"]
    assert rows["throughput (inf/s)"] == ["1,600", "800.0 (not comparable)"]
    assert "not comparable: the latency of mcu.json is not compared with host.json's: " \
        "host clock vs device clock." in text
    # an older report's RSS is the process's, and says so
    assert rows["process peak RSS"] == ["400 MiB", "40 MiB (-360 MiB, -90%)"]
    assert rows["top-1 accuracy"] == ["90.00%", "88.00% (-2.00 pt)"]  # fractions change by points
    assert rows["latency measured on"] == ["host", "device"]
    # present in one report only: the other shows a dash, and there is no delta
    assert rows["arena"] == ["-", "24 KiB"]
    assert rows["flash"] == ["-", "70 KiB"]
    assert rows["bit exact"] == ["-", "yes"]
    assert rows["device instructions"] == ["-", "10,500,000"]
    assert rows["max abs error"] == ["0", "0.0039 (+0.0039)"]  # no relative change from zero


def test_latency_deltas_on_one_machine_are_subtracted(tmp_path):
    a = write(tmp_path, "before.json", host_report())
    b = write(tmp_path, "after.json", host_report(latency_ms={"p50": 0.42}, throughput_ips=800.0))
    rows = rows_by_label(compare.render_text(compare.compare_files([a, b])))
    # 0.61 -> 0.42 ms: -0.19 ms, -31 %; three samples are too few for an interval
    assert rows["latency p50 (ms)"] == ["0.610", "0.420 (-0.190, -31%)"]
    assert rows["throughput (inf/s)"] == ["1,600", "800.0 (-800.0, -50%)"]


def test_rows_no_report_has_are_left_out(tmp_path):
    a = write(tmp_path, "a.json", host_report())
    b = write(tmp_path, "b.json", host_report(latency_ms={"p50": 0.61}))
    text = compare.render_text(compare.compare_files([a, b]))
    for absent in ("arena", "bit exact", "device instructions", "device cycles", "mismatches"):
        assert absent not in rows_by_label(text)
    assert rows_by_label(text)["latency p50 (ms)"] == ["0.610", "0.610 (=)"]


def test_optional_parts_may_be_null_or_missing(tmp_path):
    sparse = {"schema": "edgekit.report/1", "model": {"name": "m"}, "backend": "onnx",
              "accuracy": None, "fidelity": None, "memory": {}, "latency_ms": {"p50": "n/a"}}
    a = write(tmp_path, "full.json", host_report())
    b = write(tmp_path, "sparse.json", sparse)
    rows = rows_by_label(compare.render_text(compare.compare_files([a, b])))
    assert rows["model"] == ["kws v2", "m"]
    assert rows["target"] == ["host-cpu", "-"]
    assert rows["latency p50 (ms)"] == ["0.610", "-"]  # a non-number is not shown as one
    assert rows["top-1 accuracy"] == ["90.00%", "-"]
    assert rows["cosine similarity"] == ["1.0000", "-"]


def faster_report() -> dict:
    """The same model on the same host, faster: latencies that may be subtracted."""
    return host_report(backend="onnx", latency_ms={"p50": 0.42}, throughput_ips=800.0)


def test_baseline_option_picks_the_reference_column(tmp_path):
    a = write(tmp_path, "host.json", host_report())
    b = write(tmp_path, "mcu.json", faster_report())
    # a baseline that is one of the reports stays in place
    result = compare.compare_files([a, b], baseline=b)
    assert [c.label for c in result.columns] == ["host.json", "mcu.json"] and result.baseline == 1
    rows = rows_by_label(compare.render_text(result))
    assert rows["report"] == ["host.json", "mcu.json (baseline)"]
    assert rows["latency p50 (ms)"] == ["0.610 (+0.190, +45%)", "0.420"]
    # a baseline not in the list becomes the first column
    c = write(tmp_path, "old.json", host_report(latency_ms={"p50": 1.22}))
    result = compare.compare_files([a, b], baseline=c)
    assert [col.label for col in result.columns] == ["old.json", "host.json", "mcu.json"]
    assert result.baseline == 0
    assert rows_by_label(compare.render_text(result))["latency p50 (ms)"][1] == "0.610 (-0.610, -50%)"


def test_json_output_carries_numbers_and_direction(tmp_path):
    a = write(tmp_path, "host.json", host_report())
    b = write(tmp_path, "mcu.json", faster_report())
    data = compare.compare_files([a, b]).to_json()
    assert data["baseline"] == 0
    assert [c["backend"] for c in data["columns"]] == ["tflite", "onnx"]
    assert [c["latency_comparable"] for c in data["columns"]] == [True, True]
    rows = {row["key"]: row for row in data["rows"]}
    p50 = rows["latency_ms.p50"]
    assert p50["values"] == [0.61, 0.42] and p50["deltas"][0] is None
    assert p50["deltas"][1]["absolute"] == pytest.approx(-0.19)
    assert p50["deltas"][1]["relative"] == pytest.approx(-0.19 / 0.61)
    assert p50["deltas"][1]["better"] is True  # lower latency is better
    assert rows["throughput_ips"]["deltas"][1]["better"] is False  # lower throughput is worse
    json.dumps(data)  # serialisable as is
    # against a board timed by its own clock: no numbers, the reason
    data = compare.compare_files([a, write(tmp_path, "board.json", mcu_report())]).to_json()
    rows = {row["key"]: row for row in data["rows"]}
    assert rows["latency_ms.p50"]["deltas"][1] == {"comparable": False, "reason": "host clock vs device clock"}
    assert data["columns"][1]["latency_comparable"] is False
    assert rows["fidelity.cosine"]["deltas"][1]["better"] is False
    assert rows["fidelity.max_abs_err"]["deltas"][1]["relative"] is None  # baseline 0


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "content, phrase",
    [
        (None, "no such report file"),
        ("{not json", "not JSON"),
        ("[1, 2]", "not an edgekit report (schema None"),
        (json.dumps({"schema": "edgekit.artifact/1"}), "schema 'edgekit.artifact/1', expected 'edgekit.report/1'"),
    ],
)
def test_a_bad_report_file_is_one_error_naming_it(tmp_path, content, phrase):
    good = write(tmp_path, "good.json", host_report())
    bad = tmp_path / "bad.json"
    if content is not None:
        bad.write_text(content)
    with pytest.raises(EdgekitError) as info:
        compare.compare_files([good, bad])
    assert str(info.value).startswith(f"{bad}: ")
    assert phrase in str(info.value)


def test_report_schema_matches_the_report_writer(tmp_path):
    report_module = pytest.importorskip("edgekit.bench.report")
    assert compare.REPORT_SCHEMA == report_module.SCHEMA
    path = tmp_path / "written.json"
    report_module.write(mcu_report(), path)
    assert compare.load_report(path)["backend"] == "aot"


# --------------------------------------------------------------------- HTML


class _Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.cells: list[str] = []
        self._in_cell = False

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += attrs
        if tag in ("td", "th"):
            self._in_cell = True
            self.cells.append("")

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self._in_cell = False

    def handle_data(self, data):
        if self._in_cell:
            self.cells[-1] += data


def test_html_is_a_self_contained_page_with_escaped_text(tmp_path):
    hostile = host_report(model={"name": "<script>alert(1)</script>", "version": 1})
    a = write(tmp_path, "a.json", hostile)
    b = write(tmp_path, "b.json", faster_report())
    page = compare.render_html(compare.compare_files([a, b]), charts=False)
    parsed = _Collector()
    parsed.feed(page)
    assert "script" not in parsed.tags and "link" not in parsed.tags and "img" not in parsed.tags
    assert not any(name in ("src", "href") for name, _ in parsed.attrs)
    assert "http://" not in page and "https://" not in page
    assert "<script>alert(1)</script> v1" in parsed.cells  # shown as text, not markup
    assert "0.420 (-0.190, -31%)" in parsed.cells
    assert 'class="delta better"' in page and 'class="delta worse"' in page


# ---------------------------------------------------------------------- CLI


def test_cli_prints_the_table_writes_html_and_json(tmp_path, capsys):
    a = write(tmp_path, "host.json", host_report())
    b = write(tmp_path, "mcu.json", faster_report())
    page = tmp_path / "out.html"
    code, out, _ = run_cli(capsys, "compare", str(a), str(b), "--html", str(page))
    assert code == 0
    assert rows_by_label(out)["latency p50 (ms)"] == ["0.610", "0.420 (-0.190, -31%)"]
    assert page.read_text().startswith("<!DOCTYPE html>")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left
    code, out, _ = run_cli(capsys, "compare", str(a), str(b), "--baseline", str(b), "--json")
    assert code == 0 and json.loads(out)["baseline"] == 1


def test_cli_errors_are_one_line_and_leave_no_html(tmp_path, capsys):
    a = write(tmp_path, "host.json", host_report())
    page = tmp_path / "out.html"
    code, _, err = run_cli(capsys, "compare", str(a), str(tmp_path / "missing.json"), "--html", str(page))
    assert code == 1
    assert err == f"error: {tmp_path / 'missing.json'}: no such report file\n"
    assert not page.exists()
    code, _, err = run_cli(capsys, "compare", str(a), "--html", str(tmp_path / "no" / "out.html"))
    assert code == 1 and "does not exist" in err
    code, _, err = run_cli(capsys, "compare")
    assert code == 2  # a usage error: no report given


# --------------------------------------------------------------- formatters


@pytest.mark.parametrize(
    "n, text",
    [(0, "0 B"), (1023, "1023 B"), (1024, "1 KiB"), (655360, "640 KiB"), (1536 << 10, "1.5 MiB"),
     (4 << 30, "4 GiB"), (-(12 << 10), "-12 KiB"), (None, "-")],
)
def test_format_bytes(n, text):
    assert compare.format_bytes(n) == text


@pytest.mark.parametrize(
    "x, text",
    [(0.61, "0.610"), (0.02446, "0.0245"), (6.437, "6.437"), (41.2, "41.20"), (178.12, "178.1"),
     (39842.3, "39,842"), (0.0004, "0.0004"), (-0.19, "-0.190")],
)
def test_format_number_keeps_three_significant_digits_for_small_values(x, text):
    assert compare.format_number(x) == text


def test_format_bytes_signed_marks_growth():
    assert compare.format_bytes(2048, signed=True) == "+2 KiB"
    assert compare.format_bytes(-2048, signed=True) == "-2 KiB"


# ------------------------------------------------- reports from the real harness


@pytest.mark.slow
def test_compares_reports_written_by_edgekit_bench(tmp_path, capsys):
    """What `edgekit bench` writes, `edgekit compare` reads: a float and an int8 model on the host."""
    pytest.importorskip("ai_edge_litert")
    from tinymodels import tiny_float_cnn_bytes, tiny_int8_cnn_bytes

    written = []
    for name, model_bytes in (("float", tiny_float_cnn_bytes()), ("int8", tiny_int8_cnn_bytes())):
        model = tmp_path / f"tiny_{name}.tflite"
        model.write_bytes(model_bytes)
        out = tmp_path / f"{name}.json"
        code, _, err = run_cli(capsys, "bench", str(model), "--target", "host-cpu", "--backend", "tflite",
                               "--runs", "5", "--warmup", "1", "--no-log", "--out", str(out))
        assert code == 0, err
        written.append(out)

    code, out, err = run_cli(capsys, "compare", *map(str, written), "--json")
    assert code == 0, err
    data = json.loads(out)
    reports = [json.loads(p.read_text()) for p in written]
    assert [c["model"] for c in data["columns"]] == [r["model"]["name"] for r in reports]
    assert all(c["target"] == "host-cpu" and c["backend"] == "tflite" for c in data["columns"])
    rows = {row["key"]: row for row in data["rows"]}
    p50 = [r["latency_ms"]["p50"] for r in reports]
    assert rows["latency_ms.p50"]["values"] == p50
    assert rows["latency_ms.p50"]["deltas"][1]["absolute"] == pytest.approx(p50[1] - p50[0])
    # host runners report the model's resident memory (older ones the process's peak): whichever is there
    shown = {m.key for m in compare.METRICS}
    for key in {k for r in reports for k in r["memory"]} & {k.split(".", 1)[1] for k in shown if k.startswith("memory.")}:
        assert rows[f"memory.{key}"]["values"] == [r["memory"].get(key) for r in reports]

    code, out, _ = run_cli(capsys, "compare", *map(str, written))
    table = rows_by_label(out)
    assert table["report"] == ["float.json (baseline)", "int8.json"]
    assert table["latency p50 (ms)"][0] == compare.format_number(p50[0])


def test_large_increases_read_as_multiples():
    assert compare.format_relative(3957.5) == "3,958x"
    assert compare.format_relative(9.0) == "10x"
    assert compare.format_relative(0.5) == "+50%"
    assert compare.format_relative(-0.9999) == "-100%"
