"""The serving half every loopback exchange shares: 127.0.0.1, a free port, a daemon thread.

A venue subclass gives :meth:`_handler_class` (its request handler, bound to the venue) and keeps
its wire format to itself; start/stop/context manager/url live here once, and so do the parts of
a request handler that are no venue's own (:class:`LoopbackHandler`: quiet, HTTP/1.0, sending a
body, and the faults that cut a request short).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


@dataclass
class Fault:
    """A fault a loopback venue serves on its next requests to one path (kinds: the venue's)."""

    kind: str
    status: int | None = None
    delay: float | None = None


class LoopbackHTTPServer:
    """Start and stop an HTTP server on 127.0.0.1 (port chosen by the OS)."""

    _httpd: ThreadingHTTPServer | None = None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    def start(self) -> Self:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False  # a hung client must not hold up stop()
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:53121`` (what ccxt's ``urls['api']`` gets)."""
        if self._httpd is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"


class LoopbackHandler(BaseHTTPRequestHandler):
    """A loopback venue's request handler: GET and POST go to :meth:`_serve` (the venue's)."""

    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def _serve(self, method: str) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up: nothing to do
            pass

    def _drop(self, fault: Fault, default_delay: float) -> None:
        """Answer nothing: wait the fault's delay (or ``default_delay``), then close."""
        time.sleep(default_delay if fault.delay is None else fault.delay)
        self.close_connection = True

    def _fault_first(self, fault: Fault | None, default_delay: float, garbled: bytes) -> bool:
        """Serve a fault that stops the request before the venue sees it; True if one did.

        ``"http"``: an HTML error page with the fault's status (default 503); ``"timeout"``:
        no answer (:meth:`_drop`); ``"malformed"``: a 200 with ``garbled`` (a JSON body cut
        short in the venue's format). Other kinds (``"lost"``: :meth:`_drop` after the venue
        acted) are the caller's.
        """
        if fault is None:
            return False
        if fault.kind == "http":
            status = fault.status or 503
            self._send(status, f"<html>{status} injected fault</html>".encode(), "text/html")
        elif fault.kind == "timeout":
            self._drop(fault, default_delay)
        elif fault.kind == "malformed":
            self._send(200, garbled, "application/json")
        else:
            return False
        return True
