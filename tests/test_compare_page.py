"""The HTML page in headless Chromium: loaded from disk with the network off, every chart drawn.

The screenshots are kept (pytest's tmp dir and build/test-artifacts/) for a
person to look at. Reports from `edgekit bench` get the same check in
test_compare_real.py.
"""

from __future__ import annotations

import json
from html.parser import HTMLParser

from browser import open_page
from clitools import run_cli_here as run_cli
from comparereports import many

CHARTS = ["latency", "pareto", "memory"]


class _Addresses(HTMLParser):
    """Every attribute that could make the browser fetch something."""

    def __init__(self):
        super().__init__()
        self.addresses: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.addresses += [v or "" for k, v in attrs if k in ("src", "href", "xlink:href", "action", "data")]


def check_drawn(charts: list[dict], labels: list[str]) -> None:
    assert [c["name"] for c in charts] == CHARTS
    for chart in charts:
        assert chart["width"] > 400 and chart["height"] > 150, chart["name"]
        assert chart["shapes"] > 20, chart["name"]  # axes, ticks, boxes, bars, points
        assert "no report has" not in chart["text"], chart["name"]
    latency = charts[0]["text"]
    assert all(label in latency for label in labels)  # one box per report, labelled
    assert "Pareto front" in charts[1]["text"]
    assert "budget" in charts[2]["text"]


def test_thirty_reports_render_as_one_readable_page(tmp_path, capsys):
    reports = many(30)
    paths = []
    for i, report in enumerate(reports):
        paths.append(tmp_path / f"r{i:02d}.json")
        paths[-1].write_text(json.dumps(report))
    page_file = tmp_path / "compare-30.html"
    code, out, err = run_cli(capsys, "compare", *map(str, paths), "--html", str(page_file),
                             "--fail-on", "flash>100%budget")
    assert code == 1 and "broke flash>100%budget" in err  # the page is written before the gate fails
    html = page_file.read_text()
    parsed = _Addresses()
    parsed.feed(html)
    assert not ({"script", "link", "img", "iframe", "object"} & parsed.tags)
    assert all(a.startswith("#") for a in parsed.addresses)  # only references inside the page
    assert "http://" not in html and "https://" not in html

    requested, charts = open_page(page_file, tmp_path / "compare-30.png", width=1700)
    assert requested == [page_file.resolve().as_uri()]
    check_drawn(charts, [p.name for p in paths])
    assert (tmp_path / "compare-30.png").stat().st_size > 50_000


def test_the_pareto_front_is_what_nothing_beats_on_both_latency_and_accuracy():
    from edgekit.compare.charts import pareto_front

    points = [(1.0, 80.0), (2.0, 85.0), (1.5, 79.0), (3.0, 85.0), (0.5, 70.0), (4.0, 90.0), (2.0, 84.0)]
    # (1.5, 79) loses to (1.0, 80); (3.0, 85) and (2.0, 84) to (2.0, 85)
    assert sorted(pareto_front(points)) == [0, 1, 4, 5]


def test_the_page_carries_each_report_s_provenance(tmp_path):
    from edgekit.compare import compare, render_html

    reports = many(3)
    page = render_html(compare(reports, ["a.json", "b.json", "c.json"]), charts=False)
    for report in reports:
        assert f'title="{report["model"]["sha256"]}">{report["model"]["sha256"][:12]}<' in page
        assert f'title="{report["artifact"]["sha256"]}">' in page
    assert "edgekit 0.1.0, numpy 2.1.3, ai-edge-litert 2.3.0" in page
    assert "AMD EPYC, x86_64, 2 cores" in page
