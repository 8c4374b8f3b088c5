"""Headless Chromium for page tests: the system's browser driven by Playwright, offline.

Nothing is downloaded: Playwright is pointed at the Chromium the Makefile
installs (Debian's `chromium`), and tests skip, saying why, when either is absent.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "build" / "test-artifacts"
from edgekit.web.chromium import ARGS  # the flags the browser runner starts Chromium with

# what each chart's <svg> is measured by, in the page itself
_CHARTS_JS = """figures => figures.map(f => {
  const svg = f.querySelector('svg');
  const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
  return {name: f.dataset.chart, width: box.width, height: box.height,
          shapes: svg ? svg.querySelectorAll('path, rect, use').length : 0,
          text: svg ? svg.textContent : ''};
})"""


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium)")
    pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    return path


def open_page(page_file: Path, screenshot: Path, *, width: int = 1400) -> tuple[list[str], list[dict]]:
    """Load a page from disk with the network off: (every URL it requested, what each chart drew).

    The full-page screenshot is written to `screenshot` and copied to
    build/test-artifacts/ in the repository, where a person can look at it.
    """
    from playwright.sync_api import sync_playwright

    executable = chromium()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=list(ARGS))
        try:
            context = browser.new_context(viewport={"width": width, "height": 900}, offline=True)
            page = context.new_page()
            requested: list[str] = []
            page.on("request", lambda request: requested.append(request.url))
            page.goto(page_file.resolve().as_uri(), wait_until="load")
            charts = page.eval_on_selector_all("figure[data-chart]", _CHARTS_JS)
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(screenshot, ARTIFACTS / screenshot.name)
    return requested, charts
