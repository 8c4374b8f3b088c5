"""Headless Chromium, driven by Playwright for Python, opening one page and watched while it runs.

Playwright's sync API only delivers events while one of its calls runs, so
the browser lives on its own thread that idles in `wait_for_timeout`: a
crashed page, an uncaught page error or a browser that went away becomes the
channel's fault at once, and every wait on the link ends with that line.
The system Chromium is used (`executable_path`); Playwright's own browser
downloads are never needed.
"""

from __future__ import annotations

import threading

from edgekit.web import assets

ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)
LAUNCH_SECONDS = 30.0


def _first_line(text: str) -> str:
    lines = str(text).strip().splitlines()
    return lines[0] if lines else "no reason given"


class HeadlessChromium:
    """Chromium on a thread of its own, showing `url`, reporting faults to `fault(line)`."""

    def __init__(self, url: str, fault, args: tuple[str, ...] = ARGS):
        self.url = url
        self.fault = fault
        self.args = list(args)
        self.executable = assets.chromium_binary()
        self.sync_playwright = assets.playwright_sync()
        self.console: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="edgekit-chromium", daemon=True)

    def start(self) -> HeadlessChromium:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            with self.sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=self.executable, args=self.args, headless=True, timeout=LAUNCH_SECONDS * 1e3
                )
                try:
                    page = browser.new_page()
                    page.on("crash", lambda *_: self.fault("the browser page crashed"))
                    page.on("pageerror", lambda error: self.fault(f"page error: {_first_line(error)}"))
                    page.on("console", self._console)
                    browser.on("disconnected", lambda *_: self._stop.is_set() or self.fault("Chromium went away"))
                    page.goto(self.url, timeout=LAUNCH_SECONDS * 1e3)
                    while not self._stop.is_set():
                        page.wait_for_timeout(100)
                finally:
                    try:
                        browser.close()
                    except Exception:  # a crashed browser cannot be closed politely; Playwright reaps it
                        pass
        except Exception as exc:  # launch failures, a crash mid-wait: one line to whoever waits on the link
            if not self._stop.is_set():
                self.fault(f"Chromium failed: {_first_line(exc)}")

    def _console(self, message) -> None:
        # kept for the error line when a run fails (a wasm binary that will not load says why here)
        if message.type in ("error", "warning"):
            self.console.append(_first_line(message.text))
            del self.console[:-20]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=15)
