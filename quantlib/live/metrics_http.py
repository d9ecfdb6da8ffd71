"""The ``/metrics`` endpoint of a live run (Prometheus text format, ``prometheus_client``).

``quantlib live run --metrics-port 9108`` serves, on 127.0.0.1 unless ``--metrics-host`` says
otherwise: equity, cash, position per symbol, the last bar's time and age, orders by status,
fills, errors and retries by kind, halts, a stale-feed flag and the per-bar step latency
histogram. Values are updated by :class:`~quantlib.live.watch.RunWatcher` off the trading
thread; the HTTP server has its own thread.

Examples
--------
>>> m = RunMetrics()
>>> m.count("retries", "fetch_ohlcv")
>>> b"quantlib_retries_total" in m.exposition()
True
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)

from quantlib.errors import LiveError
from quantlib.live.state import BarRow, symbol_key

# per-bar step (decide + commit) latency buckets, seconds: the budget is 1 ms at p99
_LATENCY_BUCKETS = (5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 2e-3, 5e-3, 1e-2, 5e-2, 0.1, 1.0)


class RunMetrics:
    """The run's metrics in their own registry (several runs may share a test process)."""

    def __init__(self, symbols: list[str] | tuple[str, ...] = ()) -> None:
        self.symbols = list(symbols)
        r = self.registry = CollectorRegistry()
        self.equity = Gauge("quantlib_equity", "account equity (quote)", registry=r)
        self.cash = Gauge("quantlib_cash", "free cash (quote)", registry=r)
        self.position = Gauge("quantlib_position", "position (base units)", ["symbol"],
                              registry=r)
        self.last_bar = Gauge("quantlib_last_bar_timestamp_seconds",
                              "open time of the last processed bar (unix s)", registry=r)
        self.last_bar_age = Gauge("quantlib_last_bar_age_seconds",
                                  "seconds since the last processed bar closed", registry=r)
        self.orders = Gauge("quantlib_orders", "orders in the state file by status", ["status"],
                            registry=r)
        self.fills = Counter("quantlib_fills", "fills seen by this process", registry=r)
        self.bars = Counter("quantlib_bars", "bars processed by this process", registry=r)
        self.errors = Counter("quantlib_errors", "errors by kind", ["kind"], registry=r)
        self.retries = Counter("quantlib_retries", "exchange retries by call", ["kind"],
                               registry=r)
        self.halts = Counter("quantlib_halts", "risk halts", registry=r)
        self.halted = Gauge("quantlib_halted", "1 while a risk limit halts trading", registry=r)
        self.stale = Gauge("quantlib_feed_stale", "1 while no candle came for 2 bar lengths",
                           registry=r)
        self.step_latency = Histogram("quantlib_step_latency_seconds",
                                      "per-bar step: decide and commit", registry=r,
                                      buckets=_LATENCY_BUCKETS)
        self._bar_close_s: float | None = None
        self.server = None  # the HTTP server, once serving
        self.last_bar_age.set_function(self._age)

    def _age(self) -> float:
        return float("nan") if self._bar_close_s is None else time.time() - self._bar_close_s

    def on_bar(self, bar_ms: int, bar_length_ms: int, step_ns: int | None) -> None:
        self.bars.inc()
        self.last_bar.set(bar_ms / 1000)
        self._bar_close_s = (bar_ms + bar_length_ms) / 1000
        if step_ns is not None:
            self.step_latency.observe(step_ns / 1e9)

    def count(self, name: str, kind: str = "") -> None:
        """One more error / retry (by kind) or halt."""
        if name == "halts":
            self.halts.inc()
            self.halted.set(1)
        elif name == "errors":
            self.errors.labels(kind=kind or "error").inc()
        elif name == "retries":
            self.retries.labels(kind=kind or "retry").inc()

    def on_state(self, orders_by_status: dict[str, int], last_bar: BarRow | None,
                 meta: dict[str, Any]) -> None:
        """Orders, equity, cash and positions as the state file has them now (``last_bar``:
        the newest row of the bars table, None before the first bar)."""
        for status, count in orders_by_status.items():
            self.orders.labels(status=status).set(count)
        if last_bar is not None:
            self.cash.set(last_bar.cash)
            self.equity.set(last_bar.equity)
        for symbol in self.symbols:
            key = symbol_key("position", symbol, self.symbols[0])
            try:
                self.position.labels(symbol=symbol).set(float(meta.get(key, 0.0)))
            except ValueError:
                continue
        self.halted.set(1 if meta.get("halted") else 0)

    def shutdown(self) -> None:
        """Stop serving (the run is over)."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def exposition(self) -> bytes:
        """The metrics in Prometheus' text format."""
        return generate_latest(self.registry)

    def serve(self, port: int, host: str = "127.0.0.1"):
        """Serve ``/metrics`` on ``host:port`` from a daemon thread; returns the server."""
        try:
            server, _ = start_http_server(port, addr=host, registry=self.registry)
            self.server = server
        except OSError as exc:
            raise LiveError(f"--metrics-port {port} on {host}: cannot listen ({exc.strerror})"
                            ) from None
        return server


__all__ = ["RunMetrics"]
