"""Watching a live run from inside its process: notifications and /metrics from its events.

:class:`RunWatcher` is a sink of the run's :class:`~quantlib.live.logs.JsonLogger`: the trading
thread only appends each (already redacted) record to a queue. A watcher thread then

* turns log events into notifications (start, stop and why, risk halt, kill switch, exchange
  errors after the retries, ...) and metric updates (errors and retries by kind, halts);
* after the runner's per-bar ``bar`` observations, at most every ``poll_interval`` (0.25 s),
  reads the state file READ-ONLY (its own SQLite connection, ``mode=ro``: the runner's commit is
  already visible) for what the log does not say: new fills (and exits among them), orders by status, equity, cash and positions, and
  the daily summary when a bar opens a new UTC day;
* says ``stale_feed`` once when no new closed candle arrived for ``stale_after`` seconds
  (default two bar lengths), and re-arms when bars come again.

Nothing here runs on the trading thread except ``queue.put_nowait``.
"""

from __future__ import annotations

import os
import queue
import sqlite3
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from quantlib.core.timeframes import timeframe_to_seconds
from quantlib.live.notify import Notifier, describe, parse_notify_on
from quantlib.live.state import BAR_COLUMNS, BarRow, select

_DAY_MS = 86_400_000


class RunWatcher:
    """Notifications and metrics of one run, fed by its log records.

    Parameters
    ----------
    state_path : the run's state file (read-only here).
    timeframe : the spec's bar length (``"1h"``): the stale-feed limit is two of them.
    notifier : a started :class:`~quantlib.live.notify.Notifier`, or None.
    metrics : a :class:`~quantlib.live.metrics_http.RunMetrics`, or None.
    stale_after : seconds without a new candle before ``stale_feed`` (default 2 bar lengths).
    strategy : the strategy's name, in every notification's title.
    """

    def __init__(self, state_path: str | Path, timeframe: str, *, notifier: Notifier | None = None,
                 metrics: Any = None, stale_after: float | None = None, strategy: str = ""):
        self.state_path = Path(state_path)
        self.bar_ms = timeframe_to_seconds(timeframe) * 1000
        self.stale_after = stale_after if stale_after is not None else 2 * self.bar_ms / 1000
        self.notifier, self.metrics, self.strategy = notifier, metrics, strategy
        self.records: queue.Queue[dict | None] = queue.Queue(100_000)
        self.poll_interval = 0.25  # seconds between reads of the state file
        self._last_bar_seen = time.time()  # when the runner said it (the record's ts)
        self._stale = False
        self._stale_declared_at = 0.0
        self._running = False
        self._fill_id = 0
        self._day: int | None = None
        self._db: sqlite3.Connection | None = None
        self._thread: threading.Thread | None = None

    # -- wiring -------------------------------------------------------------------------------
    def __call__(self, record: dict[str, Any]) -> None:
        """The logger sink: enqueue and return (a full queue drops: trading goes first)."""
        try:
            self.records.put_nowait(record)
        except queue.Full:
            pass

    def start(self) -> RunWatcher:
        """Start watching; call before the run starts (fills already in the state, those of a
        previous run, are not notified again)."""
        self._fill_id = self._max_fill_id()  # now, not when the thread gets to it
        self._thread = threading.Thread(target=self._run, name="quantlib-watch", daemon=True)
        self._thread.start()
        return self

    def close(self, timeout: float = 5.0) -> None:
        """Handle what is queued, then stop (and close the notifier after its last send)."""
        if self._thread is not None:
            self.records.put(None)
            self._thread.join(timeout)
        if self.notifier is not None:
            self.notifier.close(timeout)
        if self.metrics is not None:
            self.metrics.shutdown()

    # -- watcher thread -----------------------------------------------------------------------
    def _run(self) -> None:
        unread = False  # bars processed since the state was last read
        last_read = 0.0
        while True:
            try:
                batch = [self.records.get(timeout=0.1)]
            except queue.Empty:
                batch = []
            while batch and len(batch) < 10_000:
                try:
                    batch.append(self.records.get_nowait())
                except queue.Empty:
                    break
            for record in batch:
                if record is None:
                    if unread:
                        self._poll_state()
                    return
                unread |= self._handle(record)
            # The state is read at most every poll_interval: a replay steps thousands of bars
            # a second, and this thread must not compete with the trading thread for the GIL.
            if unread and time.monotonic() - last_read >= self.poll_interval:
                self._poll_state()
                unread, last_read = False, time.monotonic()
            self._check_stale()

    def _handle(self, record: dict[str, Any]) -> bool:
        """React to one record; True when it was a processed bar."""
        event = record.get("event", "")
        if event == "bar":
            self._on_bar(record)
            return True
        if event == "start":
            self._running = True
            self._last_bar_seen = float(record.get("ts", time.time()))
            self._notify("start", f"started ({record.get('mode')})", record)
        elif event == "stop":
            self._running = False
            reason = record.get("reason")
            self._notify("kill_switch" if reason == "kill_switch" else "stop",
                         f"stopped: {reason}", record)
        elif event == "risk_halt":
            self._count("halts")
            self._notify("halt", f"risk halt: {record.get('reason')}", record)
        elif event == "run_error":
            self._running = False
            self._count("errors", record.get("kind", "error"))
            exchange = record.get("kind") == "ExchangeError"
            self._notify("exchange_error" if exchange else "stop",
                         "exchange unreachable after retries, stopped" if exchange
                         else f"stopped on an error ({record.get('kind')})", record)
        elif event in ("exchange_retry", "order_retry"):
            self._count("retries", record.get("call") or event)
        elif event == "order_rejected":
            self._count("errors", "order_rejected")
        elif event == "grid_stop_out":
            self._notify("stop_order", "grid stop-out", record)
        elif event == "stop_filled_at_exchange":
            self._notify("stop_order", "resting stop order filled at the exchange", record)
        return False

    def _on_bar(self, record: dict[str, Any]) -> None:
        self._last_bar_seen = float(record.get("ts", time.time()))  # not when we got to it
        # Only a bar stepped after the stall was reported re-arms the watchdog: bars this thread
        # reads late, from before the stall, must not make it say "stale" a second time.
        if self._stale and self._last_bar_seen > self._stale_declared_at:
            self._stale = False
            if self.metrics is not None:
                self.metrics.stale.set(0)
        bar_ms = int(record["bar"])
        if self.metrics is not None:
            self.metrics.on_bar(bar_ms, self.bar_ms, record.get("step_ns"))
        day = bar_ms // _DAY_MS
        if self._day is not None and day > self._day:
            self._daily_summary(self._day)
        self._day = day

    def _check_stale(self) -> None:
        if not self._running or self._stale:
            return
        idle = time.time() - self._last_bar_seen
        if idle > self.stale_after:
            self._stale = True
            self._stale_declared_at = time.time()
            if self.metrics is not None:
                self.metrics.stale.set(1)
            self._notify("stale_feed", f"no new candle for {idle:.0f} s",
                         {"limit_seconds": round(self.stale_after, 3)})

    def _notify(self, event: str, what: str, record: dict[str, Any]) -> None:
        if self.notifier is not None:
            self.notifier.send(event, f"quantlib {self.strategy}: {what}", describe(record))

    def _count(self, name: str, kind: str = "") -> None:
        if self.metrics is not None:
            self.metrics.count(name, kind)

    # -- state (read-only) --------------------------------------------------------------------
    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        if self._db is None:
            if not self.state_path.exists():
                return []
            uri = f"file:{self.state_path.resolve()}?mode=ro"
            self._db = sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=1.0)
        try:
            return self._db.execute(sql, args).fetchall()
        except sqlite3.Error:
            return []  # busy or mid-creation: the next bar reads again

    def _column(self, sql: str, args: tuple = ()) -> list[Any]:
        """The values of the one column ``sql`` selects ([] when the file cannot be read)."""
        return [value for (value,) in self._query(sql, args)]

    def _max_fill_id(self) -> int:
        ids = self._column("SELECT COALESCE(MAX(id), 0) FROM fills")
        return int(ids[0]) if ids else 0

    def _poll_state(self) -> None:
        fills = self._query(
            "SELECT f.id, f.time, f.side, f.price, f.size, f.fee, o.intent, o.symbol "
            "FROM fills f LEFT JOIN orders o ON o.client_id = f.client_id WHERE f.id > ? "
            "ORDER BY f.id", (self._fill_id,))
        for fid, when, side, price, size, fee, intent, symbol in fills:
            self._fill_id = fid
            what = f"{'buy' if side > 0 else 'sell'} {size:.8g} {symbol or ''} @ {price:.8g}"
            fields = {"time": _iso(when), "side": side, "price": price, "size": size,
                      "fee": fee, "intent": intent}
            exit_kind = (intent or "").startswith("exit|")
            self._notify("stop_order" if exit_kind else "fill",
                         ("exit " + intent.split("|")[1] + ": " if exit_kind else "fill: ") + what,
                         fields)
        if self.metrics is not None:
            self.metrics.fills.inc(len(fills))
            last = self._query(select(BAR_COLUMNS, "bars") + " ORDER BY time DESC LIMIT 1")
            self.metrics.on_state(
                dict(self._query("SELECT status, COUNT(*) FROM orders GROUP BY status")),
                BarRow._make(last[0]) if last else None,
                dict(self._query("SELECT key, value FROM meta")))

    def _daily_summary(self, day: int) -> None:
        start, end = day * _DAY_MS, (day + 1) * _DAY_MS
        before = self._column("SELECT equity FROM bars WHERE time < ? ORDER BY time DESC "
                              "LIMIT 1", (start,))
        to_date = self._column("SELECT equity FROM bars WHERE time < ? ORDER BY time", (end,))
        today = self._column("SELECT equity FROM bars WHERE time >= ? AND time < ? "
                             "ORDER BY time", (start, end))
        trades = self._column("SELECT COUNT(*) FROM fills WHERE time >= ? AND time < ?",
                              (start, end))
        if not today:
            return
        summary = daily_figures(to_date, (before or today)[0])
        summary["trades"] = int(trades[0]) if trades else 0
        day_text = datetime.fromtimestamp(start / 1000, tz=UTC).date().isoformat()
        self._notify("daily_summary", f"daily summary {day_text}", summary)


def daily_figures(equity_to_date: list[float], day_open_equity: float) -> dict[str, float]:
    """Equity, the day's pnl and the drawdown from the run's peak, at the end of a day.

    Examples
    --------
    >>> daily_figures([100.0, 120.0, 90.0], 120.0)
    {'equity': 90.0, 'pnl': -30.0, 'drawdown': 0.25}
    """
    last = float(equity_to_date[-1])
    peak = max(equity_to_date)
    return {"equity": last, "pnl": last - float(day_open_equity),
            "drawdown": (peak - last) / peak if peak > 0 else 0.0}


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat()




__all__ = ["RunWatcher", "daily_figures"]


def attach(logger: Any, state: Path, spec: Any, *, notify: list[str] | None = None,
           notify_on: str | None = None, metrics_port: int | None = None,
           metrics_host: str = "127.0.0.1", stale_after: float | None = None
           ) -> RunWatcher | None:
    """Start what ``quantlib live run``'s watch options ask for and hook it to ``logger``.

    ``notify`` falls back to ``QUANTLIB_NOTIFY_URLS`` (whitespace separated). Returns None when
    nothing is asked (then no metrics server is imported and the run pays nothing).
    """
    urls = list(notify or os.environ.get("QUANTLIB_NOTIFY_URLS", "").split())
    if not urls and metrics_port is None:
        return None
    events = parse_notify_on(notify_on)  # checked before anything starts
    notifier = Notifier(urls, events, logger=logger).start() if urls else None
    metrics = None
    if metrics_port is not None:
        from quantlib.live.metrics_http import RunMetrics

        metrics = RunMetrics(spec.symbols)
        server = metrics.serve(metrics_port, metrics_host)
        logger.info("metrics", url=f"http://{metrics_host}:{server.server_port}/metrics")
    watcher = RunWatcher(state, spec.timeframe, notifier=notifier, metrics=metrics,
                         stale_after=stale_after, strategy=spec.name).start()
    logger.sinks.append(watcher)
    return watcher


__all__ += ["attach"]
