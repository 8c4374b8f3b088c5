"""Runners for TF.js graph models: the JS device program under Node.js, or in a browser page.

    node     node js/node-device.js  ◀─ stdin/stdout frames ─▶ LinkRunner
    browser  page.html in Chromium (headless) or in any browser (--serve)
                 ◀─ frames over fetch() to LinkServer ─▶ LinkRunner

Both are `LinkRunner`s (edgekit/link/host.py): the model is timed in the JS
engine, on `performance.now()`, and the report's `env` is the JS side's. The
TF.js backend (wasm, cpu, webgl) is the target's `extras.tfjs_backend`.
"""

from __future__ import annotations

import socket
import sys

from edgekit.core import Artifact, RunOptions
from edgekit.errors import EdgekitError
from edgekit.link.host import ChildProcess, LinkRunner, Session
from edgekit.web import assets

RUNTIME = "tfjs"
DEFAULT_TIMEOUT = 60.0
#: how long a headless Chromium may take to start and open the page
HEADLESS_OPEN_SECONDS = 45.0
#: how long --serve waits for a person to open the page
VISITOR_SECONDS = 600.0
SHOW_SECONDS = 10.0


def tfjs_backend(target) -> str:
    return str(target.extras.get("tfjs_backend", "wasm"))


class TfjsRunner(LinkRunner):
    """A LinkRunner that also stops what it started (a browser, a server) when it closes."""

    def __init__(self, session: Session, artifact: Artifact, file: str, target, options: RunOptions,
                 shows_report: bool = False, cleanup=()):
        self._cleanup = list(cleanup)
        self._shows_report = shows_report
        try:
            super().__init__(session, artifact, RUNTIME, threads=options.threads,
                             options={"backend": tfjs_backend(target)}, file=file)
        except BaseException:
            self._stop_all()
            raise

    def show_report(self, report: dict) -> None:
        if not self._shows_report:
            return
        try:  # the report is complete already; a visitor who left only misses the summary
            self.session.call("show", report=report, timeout=SHOW_SECONDS)
        except EdgekitError:
            pass

    def _stop_all(self) -> None:
        while self._cleanup:
            self._cleanup.pop()()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._stop_all()


# ------------------------------------------------------------------------ node


def check_node(target, options: RunOptions) -> None:
    if options.port:
        raise EdgekitError(f"--port names a board; {target.name} runs under Node.js on this machine")
    assets.node_binary()
    assets.js_folder()


def open_node(artifact: Artifact, target, options: RunOptions) -> TfjsRunner:
    check_node(target, options)
    node, js = assets.node_binary(), assets.js_folder()
    process = ChildProcess([node, str(js / "node-device.js")], where="the TF.js program under Node.js")
    session = Session(process, timeout=options.timeout or DEFAULT_TIMEOUT)
    return TfjsRunner(session, artifact, str(artifact.primary_path.resolve()), target, options)


# ------------------------------------------------------------------------ browser


def _split_host_port(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    return host.strip("[]"), int(port)


def check_browser(target, options: RunOptions) -> None:
    if options.port:
        raise EdgekitError(f"--port names a board; {target.name} runs in a browser (--serve HOST:PORT serves the page)")
    assets.js_folder()
    if not options.serve:
        assets.chromium_binary()
        assets.playwright_sync()


def _reachable_name(host: str) -> str:
    """A host name to print for a server bound to every interface."""
    if host not in ("0.0.0.0", "::", ""):
        return host
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing interface
            return probe.getsockname()[0]
    except OSError:
        return socket.gethostname()


def open_browser(artifact: Artifact, target, options: RunOptions) -> TfjsRunner:
    from edgekit.web.channel import LinkServer

    check_browser(target, options)
    host, port = _split_host_port(options.serve) if options.serve else ("127.0.0.1", 0)
    where = "the browser page" if options.serve else "the browser page (headless Chromium)"
    server = LinkServer(artifact, host, port, where)
    cleanup = [server.close]
    try:
        if options.serve:
            url = server.url(_reachable_name(host))
            print(f"open {url} in a browser on any device that can reach this machine "
                  f"(waiting up to {VISITOR_SECONDS:g} s)", file=sys.stderr, flush=True)
            visitor = server.channel.wait_for_visitor(VISITOR_SECONDS, "no browser")
            print(f"a browser at {visitor.get('address')} opened the page: running", file=sys.stderr, flush=True)
        else:
            from edgekit.web.chromium import HeadlessChromium

            chromium = HeadlessChromium(server.url(), server.channel.set_fault).start()
            cleanup.append(chromium.close)
            server.channel.wait_for_visitor(HEADLESS_OPEN_SECONDS, "headless Chromium")
    except BaseException:
        for stop in reversed(cleanup):
            stop()
        raise
    session = Session(server.channel, timeout=options.timeout or DEFAULT_TIMEOUT)
    return TfjsRunner(session, artifact, f"/model/{artifact.primary}", target, options,
                      shows_report=True, cleanup=cleanup)
