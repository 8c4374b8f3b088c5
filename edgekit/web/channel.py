"""The page's side of the link: an HTTP server that carries edgekit.link/1 frames over fetch().

    host: Session ──write(frame)──▶ outbox ──▶ POST /link answer ──▶ page (link.js Device)
    host: Session ◀──read()──────── inbox ◀── POST /link body   ◀──── page's reply frame

The page long-polls: each POST /link carries its reply to the last request
(empty at first) and is answered with the next request, or 204 when none
came within POLL_SECONDS. The server also serves the page (cross-origin
isolated: COOP/COEP headers, so wasm threads may be used), the TF.js bundles
and .wasm binaries, and the artifact's files.

One run, one token: the URL carries a random token; the first page to post
with it claims the run and gets a session key that every later post must
carry. A post without the token (or with another), a second visitor, and any
post after the run ended are refused, so a stray visitor cannot feed the
report. Faults the page reports, or the browser's watcher sees, end every
wait at once with one line.
"""

from __future__ import annotations

import json
import mimetypes
import secrets
import socket
import threading
import time
from collections import deque
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from edgekit.core import Artifact
from edgekit.errors import EdgekitError
from edgekit.link.host import LinkFailure
from edgekit.web import assets

POLL_SECONDS = 10.0
MAX_BODY_BYTES = 256 * 1024 * 1024
#: headers that make the page cross-origin isolated (SharedArrayBuffer, so wasm threads)
ISOLATION = {"Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp"}


class LinkChannel:
    """The shared state of one run: token, session key, frames each way, the first fault."""

    def __init__(self, where: str):
        self.where = where
        self.token = secrets.token_urlsafe(18)
        self.session: str | None = None
        self.visitor: dict | None = None
        self.finished = False
        self.fault: str | None = None
        self._outbox: deque[bytes] = deque()
        self._inbox = bytearray()
        self._changed = threading.Condition()

    # -- host side (the Transport protocol of edgekit.link.host) ----------------

    def write(self, data: bytes) -> None:
        with self._changed:
            self._raise_fault()
            self._outbox.append(bytes(data))
            self._changed.notify_all()

    def read(self, count: int, deadline: float) -> bytes:
        with self._changed:
            while True:
                if self._inbox:
                    data = bytes(self._inbox[:count])
                    del self._inbox[:count]
                    return data
                self._raise_fault()
                if self.finished:
                    raise LinkFailure(f"{self.where} ended the run")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise LinkFailure(f"{self.where} did not answer in time")
                self._changed.wait(min(left, 0.2))

    def close(self) -> None:
        with self._changed:
            self.finished = True
            self._changed.notify_all()

    def _raise_fault(self) -> None:
        if self.fault:
            raise LinkFailure(f"{self.where}: {self.fault}")

    # -- faults and the visitor ---------------------------------------------------

    def set_fault(self, text: str) -> None:
        with self._changed:
            if self.fault is None:
                self.fault = text.strip().splitlines()[0] if text.strip() else "failed"
            self._changed.notify_all()

    def wait_for_visitor(self, seconds: float, waiting_for: str) -> dict:
        """Block until a page claims the run (its first post), a fault, or `seconds` pass."""
        deadline = time.monotonic() + seconds
        with self._changed:
            while self.session is None:
                self._raise_fault()
                left = deadline - time.monotonic()
                if left <= 0:
                    raise LinkFailure(f"{waiting_for} did not open the page within {seconds:g} s")
                self._changed.wait(min(left, 0.2))
            return dict(self.visitor or {})

    # -- page side (called from the HTTP handler threads) -------------------------

    def admit(self, token: str | None, session: str | None, visitor: dict) -> tuple[int, str | None]:
        """(HTTP status, session key) for a post: 200 admits it; anything else refuses it."""
        with self._changed:
            if not token or not secrets.compare_digest(token, self.token):
                return HTTPStatus.FORBIDDEN, None
            if self.finished:
                return HTTPStatus.GONE, None
            if self.session is None:
                self.session = secrets.token_urlsafe(18)
                self.visitor = visitor
                self._changed.notify_all()
                return HTTPStatus.OK, self.session
            if not session or not secrets.compare_digest(session, self.session):
                return HTTPStatus.CONFLICT, None
            return HTTPStatus.OK, self.session

    def exchange(self, reply: bytes, last: bool) -> bytes | None:
        """Take the page's reply; hand back the next request (None: none within POLL_SECONDS)."""
        with self._changed:
            if reply:
                self._inbox.extend(reply)
                self._changed.notify_all()
            if last:
                return None
            deadline = time.monotonic() + POLL_SECONDS
            while not self._outbox:
                left = deadline - time.monotonic()
                if left <= 0 or self.finished:
                    return None
                self._changed.wait(min(left, 0.5))
            return self._outbox.popleft()


class LinkServer:
    """The HTTP server of one run, on its own thread; `channel` is the Transport it feeds."""

    def __init__(self, artifact: Artifact, host: str, port: int, where: str, js: Path | None = None):
        self.artifact = artifact
        self.js = js or assets.js_folder()
        self.wasm = assets.wasm_dir(self.js)
        self.channel = LinkChannel(where)
        handler = type("Handler", (_Handler,), {"server_state": self})
        try:
            self.httpd = ThreadingHTTPServer((host, port), handler)
        except OSError as exc:
            raise EdgekitError(f"cannot serve on {host}:{port}: {exc.strerror or exc}") from None
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="edgekit-web", daemon=True)
        self.thread.start()

    @property
    def address(self) -> tuple[str, int]:
        return self.httpd.server_address[:2]

    def url(self, host: str | None = None) -> str:
        bound, port = self.address
        shown = host or bound
        if ":" in shown:
            shown = f"[{shown}]"
        return f"http://{shown}:{port}/?token={self.channel.token}"

    def close(self) -> None:
        self.channel.close()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    # -- what the server hands out --------------------------------------------------

    def static_file(self, path: str) -> Path | None:
        """The file behind a public path: the page, the TF.js bundles, the .wasm binaries."""
        if path in ("/", "/index.html"):
            return self.js / "page.html"
        name = path.lstrip("/")
        if name in assets.PAGE_FILES:
            return self.js / name
        if path.startswith("/js/") and path[4:] in assets.BUNDLES:
            return self.js / "node_modules" / assets.BUNDLES[path[4:]]
        if path.startswith("/wasm/") and path[6:] in assets.WASM_FILES:
            return self.wasm / path[6:]
        return None

    def model_file(self, path: str) -> Path | None:
        """One of the artifact's own files (only those its manifest lists)."""
        name = path[len("/model/"):]
        return self.artifact.path / name if name in self.artifact.files else None


class _Handler(BaseHTTPRequestHandler):
    server_state: LinkServer
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        # headers and body leave in two writes: without this, Nagle's algorithm meets the
        # browser's delayed ACK and every request of the link waits about 40 ms
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format, *args):  # the run's output is edgekit's, not an access log
        pass

    def _send(self, status: int, body: bytes = b"", content_type: str = "application/octet-stream", headers=None):
        self.send_response(status)
        for key, value in {**ISOLATION, **(headers or {})}.items():
            self.send_header(key, value)
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _refuse(self, status: int, why: str) -> None:
        self._send(status, json.dumps({"error": why}).encode(), "application/json")

    def do_GET(self):
        state = self.server_state
        path = urlsplit(self.path).path
        if path == "/favicon.ico":  # asked for by every browser; nothing to show
            return self._send(HTTPStatus.NO_CONTENT)
        if path.startswith("/model/"):
            status, _ = state.channel.admit(self.headers.get("X-Edgekit-Token"), self.headers.get("X-Edgekit-Session"), {})
            if status != HTTPStatus.OK:
                return self._refuse(status, "the model is served to this run's page only")
            file = state.model_file(path)
        else:
            file = state.static_file(path)
        if file is None or not file.is_file():
            return self._refuse(HTTPStatus.NOT_FOUND, "no such file")
        kind = "application/wasm" if file.suffix == ".wasm" else (mimetypes.guess_type(file.name)[0] or "application/octet-stream")
        self._send(HTTPStatus.OK, file.read_bytes(), kind)

    do_HEAD = do_GET

    def _body(self) -> bytes | None:
        size = int(self.headers.get("Content-Length") or 0)
        if size > MAX_BODY_BYTES:
            return None
        return self.rfile.read(size) if size else b""

    def do_POST(self):
        state = self.server_state
        path = urlsplit(self.path).path
        if path not in ("/link", "/fault"):
            return self._refuse(HTTPStatus.NOT_FOUND, "no such endpoint")
        body = self._body()
        if body is None:
            return self._refuse(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "too large")
        visitor = {"user_agent": self.headers.get("User-Agent"), "address": self.client_address[0]}
        status, session = state.channel.admit(self.headers.get("X-Edgekit-Token"), self.headers.get("X-Edgekit-Session"), visitor)
        if status != HTTPStatus.OK:
            why = {
                HTTPStatus.FORBIDDEN: "this run's token is missing or wrong",
                HTTPStatus.CONFLICT: "another browser has taken this run",
                HTTPStatus.GONE: "this run has ended",
            }[status]
            return self._refuse(status, why)
        if path == "/fault":
            state.channel.set_fault("the page failed: " + body.decode("utf-8", "replace"))
            return self._send(HTTPStatus.NO_CONTENT, headers={"X-Edgekit-Session": session})
        request = state.channel.exchange(body, last=self.headers.get("X-Edgekit-Last") == "1")
        if request is None:
            return self._send(HTTPStatus.NO_CONTENT, headers={"X-Edgekit-Session": session})
        self._send(HTTPStatus.OK, request, headers={"X-Edgekit-Session": session})
