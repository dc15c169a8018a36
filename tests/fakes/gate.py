"""A gate in front of a real HTTP server (Prometheus, in the tests): it takes requests and
holds each one until the test opens the gate, then forwards it and returns the real answer.
It stands for an upstream that has stalled — the one thing a real Prometheus will not do on
cue — so a test can show what must not wait for it."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx


class Gate:
    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.opened = threading.Event()
        self.held = 0  # requests that arrived while the gate was shut
        self._lock = threading.Lock()
        gate = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                gate._forward(self, None)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                gate._forward(self, self.rfile.read(length))

            def log_message(self, *_args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def open(self) -> None:
        self.opened.set()

    def _forward(self, handler: BaseHTTPRequestHandler, body: bytes | None) -> None:
        if not self.opened.is_set():
            with self._lock:
                self.held += 1
            self.opened.wait(timeout=120)
        headers = {k: v for k, v in handler.headers.items()
                   if k.lower() in ("content-type", "accept")}
        answer = httpx.request(handler.command, self.upstream + handler.path, content=body,
                               headers=headers, timeout=30)
        try:
            handler.send_response(answer.status_code)
            handler.send_header("Content-Type", answer.headers.get("content-type",
                                                                   "text/plain"))
            handler.send_header("Content-Length", str(len(answer.content)))
            handler.end_headers()
            handler.wfile.write(answer.content)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the caller gave up waiting (the test ended): nothing to answer


@contextmanager
def gated(upstream: str) -> Iterator[Gate]:
    """A shut gate in front of `upstream`, serving in a thread until the block ends (it is
    opened then, so nothing stays held)."""
    gate = Gate(upstream)
    thread = threading.Thread(target=gate._server.serve_forever, daemon=True)
    thread.start()
    try:
        yield gate
    finally:
        gate.open()
        gate._server.shutdown()
        gate._server.server_close()
