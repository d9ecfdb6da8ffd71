"""The perpetual-swap exchange feed: closed candles, their mark candles and funding, polled.

:class:`PerpExchangeFeed` polls a ccxt swap venue (``binanceusdm``) for last-price candles,
mark-price candles (``fetch_ohlcv(..., params={"price": "mark"})``, Binance
``/fapi/v1/markPriceKlines``) and funding records (``fetch_funding_rate_history``) and yields
one :class:`~quantlib.live.feeds.PerpBar` per closed bar, as
:class:`~quantlib.live.replay_feeds.PerpReplayFeed` yields them from files.

Rules (each has a test in ``tests/live/test_perp_live_cli.py``):

Closed
    A bar is released once its candle AND its mark candle have closed by the venue's clock
    (``fetch_time``: the venue decides when its candles close, not a drifting local clock), in
    time order; a candle whose mark candle is not served yet waits for the next poll.
Funding
    A bar carries the payments with time in (previous bar's close, its close]; the feed's first
    bar carries every payment fetched up to its close (one 8 h interval before the history at
    least, so the rate known at the first close is there). Payment times are floored to the
    whole second, as :mod:`quantlib.data.perp_fetch` stores them (Binance stamps payments a few
    ms after the hour), so live bars and the backtest on loaded data see the same times.
Unpublished payment
    The schedule is the most common spacing of the payments seen. When the payment due after
    the latest one seen falls at or before a bar's close and the venue has not published it,
    the bar waits: the feed asks again every ``poll_seconds`` for at most ``funding_wait``
    seconds, then stops with a :class:`~quantlib.errors.LiveError` naming the symbol, the
    payment's time and the bar (trading on without it would decide on a funding rate other
    than the backtest's, and pay it unseen). Fewer than two payments seen: no schedule, no wait.
Warm-up
    Bars closed when the feed starts fill the signal window (``warmup_only``) except the newest:
    that one is the decision due now, so a runner restarted after a crash decides it (the
    runner skips it when its state already has it) instead of silently skipping it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np

from quantlib.core.timeframes import timeframe_to_seconds
from quantlib.errors import ExchangeError, LiveError
from quantlib.live.exchange_feeds import PollingFeed
from quantlib.live.feeds import PerpBar

KLINE_LIMIT = 1500  # Binance's most candles per request
FUNDING_LIMIT = 1000  # Binance's most funding records per request
LONGEST_FUNDING_MS = 8 * 3600 * 1000  # Binance pays every 8 h at most (1 h or 4 h on some)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def funding_interval_ms(times_ms: list[int]) -> int | None:
    """The most common positive spacing of funding times (None for fewer than two payments).

    Examples
    --------
    >>> funding_interval_ms([0, 28_800_000, 57_600_000, 72_000_000])
    28800000
    """
    steps = np.diff(np.asarray(sorted(set(times_ms)), dtype=np.int64))
    if steps.size == 0:
        return None
    values, counts = np.unique(steps, return_counts=True)
    return int(values[np.argmax(counts)])


class PerpExchangeFeed(PollingFeed):
    """Poll a swap venue and yield :class:`PerpBar` objects once closed (module docstring).

    Parameters
    ----------
    exchange : a ccxt swap exchange (``ccxt.binanceusdm``); public data only, no keys needed.
    symbol, timeframe : the swap (``"BTC/USDT:USDT"``) and bar size.
    history : bars fetched at start to warm the signal window (at most 1,400).
    poll_seconds : sleep between polls.
    clock : ``() -> ms``; default: the venue's clock (``exchange.fetch_time``).
    max_polls : stop after this many polls without a new bar (None: forever).
    retries : attempts per request on network errors (bounded back-off), then ExchangeError.
    funding_wait : seconds a bar waits for a due funding payment before LiveError.

    A stop request ends a wait at once (:class:`~quantlib.live.exchange_feeds.PollingFeed`).
    """

    def __init__(self, exchange: Any, symbol: str, timeframe: str, history: int = 100,
                 poll_seconds: float = 5.0, clock: Callable[[], int] | None = None,
                 max_polls: int | None = None, retries: int = 5, funding_wait: float = 120.0):
        if history + 2 > KLINE_LIMIT - 100:
            raise LiveError(f"perp exchange feed {symbol}: history of {history} bars is more "
                            f"than one request holds ({KLINE_LIMIT - 102} at most)")
        for need in ("fetchOHLCV", "fetchFundingRateHistory"):
            if not (getattr(exchange, "has", {}) or {}).get(need):
                raise LiveError(f"perp exchange feed: {getattr(exchange, 'id', exchange)!r} "
                                f"has no {need} (a perp feed needs candles, mark candles and "
                                "funding history)")
        self.exchange, self.symbol, self.timeframe = exchange, symbol, timeframe
        self.name = f"exchange {symbol} (perp)"
        self.bar_ms = timeframe_to_seconds(timeframe) * 1000
        self.history, self.poll_seconds = history, poll_seconds
        self.clock = clock or self._venue_time
        self.max_polls, self.retries, self.funding_wait = max_polls, retries, funding_wait
        self.funding: dict[int, float] = {}  # payment time (whole second, ms) -> rate
        self._funding_next: int | None = None  # raw venue time the next funding request starts

    # -- requests ----------------------------------------------------------------------------
    def _call(self, what: str, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        """One request with bounded back-off on network errors; other errors end the feed."""
        return self._request(f"{what} {self.symbol} {self.timeframe}", fn, *args, **kwargs)

    def _venue_time(self) -> int:
        now = self._call("fetch_time", self.exchange.fetch_time)
        if not isinstance(now, int | float) or now <= 0:
            raise ExchangeError(f"fetch_time {self.symbol}: the venue answered {now!r}")
        return int(now)

    def _candles(self, since: int, price: str) -> dict[int, list]:
        params = {"price": "mark"} if price == "mark" else {}
        rows = self._call(f"fetch_ohlcv ({price})", self.exchange.fetch_ohlcv, self.symbol,
                          self.timeframe, since=since, limit=KLINE_LIMIT, params=params)
        out = {}
        for row in rows or []:
            time_ms, *ohlcv = row[:6]  # ccxt: [time, open, high, low, close, volume]
            values = [float(v) if v is not None else float("nan") for v in ohlcv]
            if not np.all(np.isfinite(values[:4])):
                raise ExchangeError(f"fetch_ohlcv ({price}) {self.symbol}: candle at "
                                    f"{_iso(int(time_ms))} has a missing or non-finite price "
                                    f"{ohlcv[:4]!r}")
            out[int(time_ms)] = values
        return out

    def _fetch_funding(self, since: int) -> None:
        """Add every record from ``since`` (or the last cursor) up to now to ``self.funding``."""
        start = since if self._funding_next is None else self._funding_next
        while True:
            page = self._call("fetch_funding_rate_history",
                              self.exchange.fetch_funding_rate_history, self.symbol,
                              since=start, limit=FUNDING_LIMIT)
            stamps = []
            for record in page or []:
                stamp, rate = record.get("timestamp"), record.get("fundingRate")
                if stamp is None or rate is None or not np.isfinite(float(rate)):
                    raise ExchangeError(f"fetch_funding_rate_history {self.symbol}: a record "
                                        f"without a time or a finite rate: {record.get('info')!r}")
                stamps.append(int(stamp))
                self.funding[int(stamp) // 1000 * 1000] = float(rate)  # whole seconds
            if stamps:
                start = max(stamps) + 1  # startTime is inclusive
            if len(stamps) < FUNDING_LIMIT:
                break
        self._funding_next = start

    # -- bars ---------------------------------------------------------------------------------
    def _due_payment(self, close: int) -> int | None:
        """The payment time due at or before ``close`` the venue has not published, or None."""
        times = sorted(t for t in self.funding if t <= close)
        interval = funding_interval_ms(sorted(self.funding))
        if not times or interval is None:
            return None
        due = times[-1] + interval
        return due if due <= close else None

    def _await_funding(self, bar_time: int, since: int) -> None:
        """Wait (bounded) until every payment due by the bar's close is published."""
        close = bar_time + self.bar_ms
        deadline = time.monotonic() + self.funding_wait
        while (due := self._due_payment(close)) is not None:
            if time.monotonic() >= deadline:
                raise LiveError(
                    f"perp exchange feed {self.symbol}: the funding payment due at {_iso(due)} "
                    f"(bar {_iso(bar_time)} closing {_iso(close)}) is not published after "
                    f"{self.funding_wait:g} s; the bar is not traded without it")
            self._wait(self.poll_seconds)
            if self._stopping():
                return
            self._fetch_funding(since)

    def _events(self, previous_close: int | None, close: int) -> tuple[tuple[int, float], ...]:
        return tuple((t, self.funding[t]) for t in sorted(self.funding)
                     if t <= close and (previous_close is None or t > previous_close))

    def __iter__(self) -> Iterator[PerpBar]:
        since = self.clock() - (self.history + 2) * self.bar_ms
        funding_since = since - LONGEST_FUNDING_MS  # the rate known at the first close
        last: int | None = None
        first, idle = True, 0
        while not self._stopping():
            start = since if last is None else last + self.bar_ms
            now = self.clock()
            candles, marks = self._candles(start, "last"), self._candles(start, "mark")
            self._check_spacing(candles)
            ready = []
            for t in sorted(candles):
                if (last is not None and t <= last) or t + self.bar_ms > now:
                    continue  # seen, or still forming
                if t not in marks:
                    break  # its mark candle is not served yet: this bar and later ones wait
                ready.append(t)
            if ready:
                self._fetch_funding(funding_since)
            for t in ready:
                self._await_funding(t, funding_since)
                if self._stopping():
                    return
                mark = marks[t]
                yield PerpBar(t, *candles[t], first and t != ready[-1], mark[0], mark[1],
                              mark[2], self._events(None if last is None else last + self.bar_ms,
                                                    t + self.bar_ms))
                last = t
                self._forget_funding(t + self.bar_ms)
            first = False
            idle = 0 if ready else idle + 1
            if self.max_polls is not None and idle >= self.max_polls:
                return
            self._wait(self.poll_seconds)

    def _forget_funding(self, close: int, keep: int = 16) -> None:
        """Drop payments given to bars already, but the last ``keep`` (the schedule)."""
        old = sorted(t for t in self.funding if t <= close)[:-keep]
        for t in old:
            del self.funding[t]

    def _check_spacing(self, candles: dict[int, list]) -> None:
        times = np.array(sorted(candles), dtype=np.int64)
        if times.size > 1 and np.diff(times).min() < self.bar_ms:
            raise LiveError(f"perp exchange feed {self.symbol}: the venue sent candles closer "
                            f"than {self.timeframe}, the spec trades {self.timeframe} candles")


__all__ = ["PerpExchangeFeed", "funding_interval_ms"]
