"""Binance's REST wire plumbing for loopback test servers: routes, signing, faults, recording.

:class:`RouteServer` is the base of a loopback Binance venue (:mod:`tests.support.binanceusdm_server`):
a threaded HTTP server on 127.0.0.1 (port 0) dispatching ``(method, path)`` through
``self.routes`` to handlers that take the request's parameters (query and form body merged) and
return JSON-able data. Routes declared ``signed=True`` are checked as Binance does
(``X-MBX-APIKEY`` header; ``signature = hex HMAC-SHA256(secret, query string + body without the
signature)``; a ``timestamp`` parameter). A handler raises :class:`BinanceApiError` to answer
Binance's ``{"code": ..., "msg": ...}`` envelope with its HTTP status; any other exception is a
server bug, kept in ``errors`` and answered as code -1000. Faults queued with
:meth:`RouteServer.inject_fault` are consumed per path before routing (``"lost"`` after it: the
request is acted on, then the connection drops without an answer, as a response lost in
flight); every request is recorded.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.support.loopback_http import Fault, LoopbackHandler, LoopbackHTTPServer

FAULT_KINDS = ("http", "timeout", "malformed", "lost")


class BinanceApiError(Exception):
    """An error answered in Binance's ``{"code": ..., "msg": ...}`` envelope."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code, self.msg, self.status = code, msg, status


@dataclass
class Route:
    handler: Callable[[dict[str, str]], Any]
    signed: bool = False


@dataclass
class RecordedRequest:
    method: str
    path: str
    params: dict[str, str]
    fault: str | None = None
    time: float = field(default_factory=time.time)


class RouteServer(LoopbackHTTPServer):
    """Lifecycle, routing, signing, faults and recording shared by loopback Binance venues.

    Subclasses fill ``self.routes`` and call ``super().__init__(api_key, secret)`` first.
    """

    def __init__(self, api_key: str, secret: str) -> None:
        self.api_key, self.secret = api_key, secret
        self.fault_delay = 1.0
        self.requests: list[RecordedRequest] = []
        self.errors: list[Exception] = []  # unexpected exceptions inside handlers (server bugs)
        self.routes: dict[tuple[str, str], Route] = {}
        self._lock = threading.RLock()
        self._faults: dict[str, deque[Fault]] = defaultdict(deque)

    # ------------------------------------------------------------------ lifecycle
    def _handler_class(self) -> type:
        return type("_Handler", (_Handler,), {"venue": self})

    def inject_fault(self, path: str, kind: str, *, times: int = 1, status: int | None = None,
                     delay: float | None = None, method: str | None = None) -> None:
        """Queue ``times`` faults for the next requests to ``path`` (only those with HTTP
        ``method`` when given: ``POST /fapi/v1/order`` but not its ``GET`` look-up)."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {FAULT_KINDS}, got {kind!r}")
        key = f"{method} {path}" if method else path
        with self._lock:
            self._faults[key].extend(Fault(kind, status, delay) for _ in range(times))

    def pending_faults(self) -> int:
        """Faults queued and not served yet."""
        with self._lock:
            return sum(len(queue) for queue in self._faults.values())

    def requests_for(self, path: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path == path]

    def _next_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for key in (f"{method} {path}", path):
                queue = self._faults.get(key)
                if queue:
                    return queue.popleft()
            return None

    def _record(self, method: str, path: str, params: dict, fault: Fault | None) -> None:
        with self._lock:
            self.requests.append(RecordedRequest(method, path, params,
                                                 fault.kind if fault else None))

    def _authenticate(self, method: str, query: str, body: str, headers: Any) -> None:
        """Binance's HMAC-SHA256 signed-request check (key header, timestamp, signature)."""
        if headers.get("X-MBX-APIKEY") != self.api_key:
            raise BinanceApiError(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        payload, _, signature = (query + body).rpartition("signature=")
        payload = payload[:-1] if payload.endswith("&") else payload
        expected = hmac.new(self.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
        if not signature or not hmac.compare_digest(signature, expected):
            raise BinanceApiError(-1022, "Signature for this request is not valid.")
        if "timestamp" not in dict(parse_qsl(query + "&" + body)):
            raise BinanceApiError(-1102, "Mandatory parameter 'timestamp' was not sent, was "
                                         "empty/null, or malformed.")


class _Handler(LoopbackHandler):
    venue: RouteServer

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def _serve(self, method: str) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        params.update(parse_qsl(body, keep_blank_values=True))
        server = self.venue
        fault = server._next_fault(method, parts.path)
        server._record(method, parts.path, params, fault)
        if self._fault_first(fault, server.fault_delay,
                             b'[{"symbol":"BTCUSDT","fundingRate":"0.0001'):
            return
        route = server.routes.get((method, parts.path))
        if route is None:
            self._send(404, b"<html><body><h2>404 Not found</h2></body></html>", "text/html")
            return
        status = 200
        try:
            if route.signed:
                server._authenticate(method, parts.query, body, self.headers)
            with server._lock:
                payload = route.handler(params)
        except BinanceApiError as exc:
            status, payload = exc.status, {"code": exc.code, "msg": exc.msg}
        except Exception as exc:  # a server bug must not look like a network fault
            server.errors.append(exc)
            status, payload = 500, {"code": -1000, "msg": "An unknown error occurred."}
        if fault is not None and fault.kind == "lost":  # acted on; the answer never arrives
            self._drop(fault, server.fault_delay)
            return
        self._send(status, json.dumps(payload).encode(), "application/json")


__all__ = ["FAULT_KINDS", "BinanceApiError", "Fault", "RecordedRequest", "Route", "RouteServer"]
