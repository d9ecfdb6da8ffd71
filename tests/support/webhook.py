"""A loopback JSON webhook receiver (what apprise's ``json://`` channel posts to).

``WebhookReceiver(mode="ok" | "hang" | "500")`` binds 127.0.0.1 on port 0 and keeps every body
it got (``received``: parsed JSON with the arrival time, ``raw``: the bytes). ``hang`` holds each
request for ``hang_seconds`` before answering; ``500`` answers Internal Server Error.

Examples
--------
>>> with WebhookReceiver() as hook:
...     hook.url.startswith("json://127.0.0.1:")
True
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class WebhookReceiver:
    def __init__(self, mode: str = "ok", hang_seconds: float = 10.0):
        self.mode, self.hang_seconds = mode, hang_seconds
        self.received: list[dict] = []
        self.raw: list[bytes] = []
        self.requests = 0
        self._lock = threading.Lock()
        self._release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    receiver.requests += 1
                if receiver.mode == "hang":
                    receiver._release.wait(receiver.hang_seconds)
                status = 500 if receiver.mode == "500" else 200
                if receiver.mode == "ok":
                    with receiver._lock:
                        receiver.raw.append(body)
                        message = json.loads(body)
                        message["_arrived"] = time.time()
                        receiver.received.append(message)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the client gave up (its read timeout)

            def log_message(self, *args):  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        """The apprise URL of this receiver."""
        return f"json://127.0.0.1:{self.port}/hook"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def texts(self) -> list[str]:
        """Each message as ``title`` + newline + ``body``."""
        with self._lock:
            return [f"{m.get('title', '')}\n{m.get('message', '')}" for m in self.received]

    def first(self, word: str) -> dict | None:
        """The first message whose title or body contains ``word``."""
        with self._lock:
            return next((m for m in self.received
                         if word in m.get("title", "") + m.get("message", "")), None)

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()
