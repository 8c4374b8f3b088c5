"""Compare's layouts for many reports: grouped rows in the terminal and in Markdown."""

from __future__ import annotations

import json
import re

from clitools import run_cli_here as run_cli
from comparereports import many, report
from edgekit.compare import build_view, compare, render_markdown, render_text

LABELS = [f"r{i:02d}.json" for i in range(30)]


def test_thirty_reports_are_one_row_each_grouped_by_target():
    reports = many(30)
    text = render_text(compare(reports, LABELS))
    titles = [line for line in text.splitlines() if line.startswith("target: ")]
    assert titles == ["target: host-cpu (15 reports)", "target: mps2-an386 (5 reports)",
                      "target: nucleo-l4r5zi (5 reports)", "target: nrf52840dk (5 reports)"]
    for label in LABELS:  # every report on exactly one line
        assert len([line for line in text.splitlines() if line.startswith(label)]) == 1
    assert max(len(line) for line in text.splitlines() if not line.startswith(("n/c", "Latency"))) < 200
    board_line = next(line for line in text.splitlines() if line.startswith("r21.json"))
    flash = reports[21]["memory"]["flash_bytes"] / reports[21]["target"]["flash_bytes"]
    assert f"({flash * 100:.0f}%)" in board_line and "bit-exact" in board_line
    host_header = text.splitlines()[1]
    assert "flash" not in host_header and "model RSS" in host_header  # no host has flash
    # the board latencies are shown, never subtracted from the host baseline's
    assert re.search(r"r03\.json .* n/c ", text)
    assert "n/c: the latencies of r03.json, r04.json, r05.json" in text


def test_few_reports_are_a_wide_table_and_the_layout_can_be_chosen():
    reports = many(4)
    assert build_view(compare(reports)).layout == "wide"
    assert build_view(compare(many(7))).layout == "rows"
    view = build_view(compare(reports), "rows", "backend")
    assert [b.title for b in view.blocks] == ["backend: tflite (2 reports)", "backend: onnx (1 report)",
                                              "backend: aot (1 report)"]
    wide = build_view(compare(reports), "wide", "target")  # grouping orders the columns
    assert wide.blocks[0].header[2][1:] == ["host-cpu", "host-cpu", "host-cpu", "mps2-an386"]


def test_markdown_is_one_pipe_table_per_group(tmp_path, capsys):
    reports = many(8)
    reports[1]["model"]["name"] = "a|b"
    text = render_markdown(compare(reports, LABELS[:8]))
    tables = [block for block in text.split("\n\n") if block.startswith("| ")]
    assert len(tables) == 4
    for table in tables:
        lines = table.splitlines()
        assert re.fullmatch(r"\| (---|---:)( \| (---|---:))* \|", lines[1])
        cells = [len(re.findall(r"(?<!\\)\|", line)) for line in lines]
        assert len(set(cells)) == 1  # the same number of columns on every line
    assert "a\\|b v1" in text
    paths = []
    for i, r in enumerate(reports[:2]):
        paths.append(tmp_path / f"r{i}.json")
        paths[-1].write_text(json.dumps(r))
    code, out, _ = run_cli(capsys, "compare", *map(str, paths), "--markdown", "--fail-on", "p50>+5%")
    assert code == 0
    assert out.startswith("| report | r0.json (baseline) | r1.json |\n| --- | ---: | ---: |\n")
    assert "**Gates**\n\n- p50>+5%: 1 passed" in out


def test_flags_that_do_not_go_together_are_usage_errors(tmp_path, capsys):
    path = tmp_path / "a.json"
    path.write_text(json.dumps(report()))
    assert run_cli(capsys, "compare", str(path), "--json", "--markdown")[0] == 2
    assert run_cli(capsys, "compare", str(path), "--by", "colour")[0] == 2
    code, _, err = run_cli(capsys, "compare")
    assert code == 2 and "--model" in err
