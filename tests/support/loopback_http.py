"""The serving half every loopback exchange shares: 127.0.0.1, a free port, a daemon thread.

A venue subclass gives :meth:`_handler_class` (its request handler, bound to the venue) and keeps
its wire format to itself; start/stop/context manager/url live here once.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self


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
