"""The `browser` runner kind: a TF.js graph model in a browser page (edgekit/web/runner.py).

Headless Chromium on this machine by default; with --serve HOST:PORT, any
browser that opens the printed URL (a phone, a laptop) runs the benchmark.
"""

from __future__ import annotations

from edgekit.core import Artifact, RunOptions, Runner


def check(target, options: RunOptions) -> None:
    from edgekit.web.runner import check_browser

    check_browser(target, options)


def open_runner(artifact: Artifact, target, options: RunOptions) -> Runner:
    from edgekit.web.runner import open_browser

    return open_browser(artifact, target, options)
