"""Exchange feeds: closed candles polled from a venue through ccxt (``--feed exchange``).

A candle is released only once the venue's clock has closed it; history fetched at start-up
comes as ``warmup_only`` bars. :class:`PollingFeed` holds what every polling feed shares (the
perp feed too, :mod:`quantlib.live.perp_feed`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from quantlib.core.timeframes import timeframe_to_seconds
from quantlib.errors import ExchangeError, LiveError
from quantlib.live.feeds import Bar, Feed, infer_timeframe, ohlcv_bar, ohlcv_time


class PollingFeed(Feed):
    """What the polling exchange feeds share: a stop request that ends any wait at once, and
    requests retried with bounded back-off over network faults.

    ``stop_requested`` (``() -> bool``, set by the runner) is checked between polls and several
    times a second while waiting: a kill switch or SIGTERM ends the feed at once instead of at
    the next closed candle, which may be an hour or a day away.
    """

    retries: int = 5

    def _request(self, label: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)``: network faults retried (pauses 0.5 s doubling, at most 30 s)
        ``retries`` times, then ExchangeError; any other ccxt error ends the feed at once
        (an unknown symbol or timeframe: no retry helps). ``label`` starts the error."""
        import ccxt

        delay = 0.5
        for attempt in range(self.retries):
            try:
                return fn(*args, **kwargs)
            except (ccxt.NetworkError, ccxt.ExchangeNotAvailable) as exc:
                if attempt == self.retries - 1:
                    raise ExchangeError(f"{label}: {type(exc).__name__} after {self.retries} "
                                        "tries") from None
                self._wait(delay)
                delay = min(delay * 2, 30.0)
            except ccxt.BaseError as exc:
                raise ExchangeError(f"{label}: {type(exc).__name__}: {str(exc)[:200]}") from None
        raise LiveError("unreachable")  # pragma: no cover

    def _wait(self, seconds: float) -> None:
        """Sleep ``seconds``, in slices short enough to notice a stop request."""
        deadline = time.monotonic() + seconds
        while not self._stopping():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.1))


class ExchangeFeed(PollingFeed):
    """Poll ``exchange.fetch_ohlcv`` and yield each candle once it has closed.

    Parameters
    ----------
    exchange : a ccxt exchange instance.
    symbol, timeframe : market and bar size.
    history : bars fetched at start to warm the signal window (yielded ``warmup_only``).
    poll_seconds : sleep between polls.
    clock : ``() -> ms`` (injectable for tests).
    max_polls : stop after this many polls without a new bar (None: forever).
    retries : attempts per request on network errors (bounded back-off), then ExchangeError.

    A stop request ends the feed at once (:class:`PollingFeed`).
    """

    def __init__(self, exchange, symbol: str, timeframe: str, history: int = 100,
                 poll_seconds: float = 5.0, clock: Callable[[], int] | None = None,
                 max_polls: int | None = None, retries: int = 5):
        self.exchange, self.symbol, self.timeframe = exchange, symbol, timeframe
        self.bar_ms = timeframe_to_seconds(timeframe) * 1000
        self.history, self.poll_seconds = history, poll_seconds
        self.clock = clock or (lambda: int(time.time() * 1000))
        self.max_polls, self.retries = max_polls, retries

    def _fetch(self, since: int | None, limit: int | None) -> list[list]:
        return self._request(f"fetch_ohlcv {self.symbol} {self.timeframe}",
                             self.exchange.fetch_ohlcv, self.symbol, self.timeframe,
                             since=since, limit=limit)

    def __iter__(self) -> Iterator[Bar]:
        now = self.clock()
        since = now - (self.history + 2) * self.bar_ms
        last = None
        first = True
        idle = 0
        while not self._stopping():
            rows = self._fetch(since if last is None else last + self.bar_ms, None)
            if first:
                self._check_spacing(rows)
            now = self.clock()
            new = False
            for row in sorted(rows, key=ohlcv_time):
                t = ohlcv_time(row)
                if (last is not None and t <= last) or t + self.bar_ms > now:
                    continue  # already seen, or the still-forming candle
                last = t
                new = True
                yield ohlcv_bar(row, warmup_only=first)
            first = False
            idle = 0 if new else idle + 1
            if self.max_polls is not None and idle >= self.max_polls:
                return
            self._wait(self.poll_seconds)

    def _check_spacing(self, rows: list[list]) -> None:
        """Refuse candles of another size than asked for (a venue that ignores the timeframe
        would have the spec trade on bars its parameters were never fitted to)."""
        times = np.array(sorted(ohlcv_time(row) for row in rows), dtype=np.int64)
        seen = infer_timeframe(times)
        if seen is not None and np.diff(times).min(initial=self.bar_ms) < self.bar_ms:
            raise LiveError(f"exchange feed {self.symbol}: the exchange sent {seen} candles, "
                            f"the spec trades {self.timeframe} candles")

class PortfolioExchangeFeed(Feed):
    """Poll every market of a portfolio spec and yield ``{symbol: Bar}`` once the candle of a
    bar time has closed in *every* market (in the spec's symbol order).

    A bar time that one market never gets (a gap at that venue) is skipped for all, as the
    backtest aligns frames on their common bar times. Candles that closed before the feed
    started are ``warmup_only``. Parameters are those of :class:`ExchangeFeed`, with
    ``symbols`` for ``symbol``.
    """

    def __init__(self, exchange, symbols: list[str], timeframe: str, history: int = 100,
                 poll_seconds: float = 5.0, clock: Callable[[], int] | None = None,
                 max_polls: int | None = None, retries: int = 5):
        self.symbols, self.timeframe = list(symbols), timeframe
        self.feeds = {s: ExchangeFeed(exchange, s, timeframe, history, poll_seconds, clock,
                                      max_polls, retries) for s in self.symbols}
        first = self.feeds[self.symbols[0]]
        self.bar_ms, self.history, self.clock = first.bar_ms, history, first.clock
        self.poll_seconds, self.max_polls = poll_seconds, max_polls
        self.name = "exchange " + ",".join(self.symbols)

    def _poll(self, seen: dict[str, int | None], waiting: dict[str, dict[int, list]],
              since: int, first: bool) -> None:
        for symbol, feed in self.feeds.items():
            feed.stop_requested = self.stop_requested
            last = seen[symbol]
            rows = feed._fetch(since if last is None else last + self.bar_ms, None)
            if first:
                feed._check_spacing(rows)
            now = self.clock()
            for row in sorted(rows, key=ohlcv_time):
                t = ohlcv_time(row)
                if (last is not None and t <= last) or t + self.bar_ms > now:
                    continue  # already seen, or still forming
                waiting[symbol][t] = row
                last = t
            seen[symbol] = last

    def __iter__(self) -> Iterator[dict[str, Bar]]:
        start = self.clock()
        since = start - (self.history + 2) * self.bar_ms
        seen: dict[str, int | None] = dict.fromkeys(self.symbols)
        waiting: dict[str, dict[int, list]] = {s: {} for s in self.symbols}
        first, idle, done = True, 0, None
        while not self._stopping():
            self._poll(seen, waiting, since, first)
            first = False
            ready = sorted(set.intersection(*(set(w) for w in waiting.values())))
            for t in ready:
                done = t
                yield {s: ohlcv_bar(waiting[s].pop(t), warmup_only=t + self.bar_ms <= start)
                       for s in self.symbols}
            if done is not None:  # a time some market skipped will never complete: drop it
                for rows in waiting.values():
                    for t in [t for t in rows if t < done]:
                        del rows[t]
            idle = 0 if ready else idle + 1
            if self.max_polls is not None and idle >= self.max_polls:
                return
            self.feeds[self.symbols[0]]._wait(self.poll_seconds)


__all__ = ["ExchangeFeed", "PollingFeed", "PortfolioExchangeFeed"]
