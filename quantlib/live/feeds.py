"""Closed-candle feeds for the live runner: a replayed file or a polled exchange.

A feed yields :class:`Bar` objects in time order, each a **closed** candle. ``warmup_only`` bars
(history fetched at start-up) fill the signal window but are never traded.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from quantlib.errors import ExchangeError, LiveError


@dataclass(frozen=True)
class Bar:
    time: int  # candle open time, ms since epoch UTC
    open: float
    high: float
    low: float
    close: float
    volume: float
    warmup_only: bool = False


def frame_to_bars(df: pd.DataFrame, warmup_only: bool = False) -> list[Bar]:
    """Canonical OHLCV frame -> list of bars."""
    times = df.index.as_unit("ms").asi8
    values = df[["open", "high", "low", "close", "volume"]].to_numpy(dtype=np.float64)
    return [Bar(int(t), *map(float, row), warmup_only) for t, row in zip(times, values, strict=True)]


class ReplayFeed:
    """Replay a data file (or frame) bar by bar, as fast as possible.

    Parameters
    ----------
    source : path of an OHLCV file readable by :func:`quantlib.data.load_ohlcv`, or a frame.
    """

    def __init__(self, source: str | Path | pd.DataFrame):
        if isinstance(source, pd.DataFrame):
            self.frame = source
        else:
            from quantlib.data import load_ohlcv

            self.frame = load_ohlcv(Path(source))
        self.timeframe = self.frame.attrs.get("timeframe")

    def __iter__(self) -> Iterator[Bar]:
        return iter(frame_to_bars(self.frame))


class ExchangeFeed:
    """Poll ``exchange.fetch_ohlcv`` and yield each candle once it has closed.

    Parameters
    ----------
    exchange : a ccxt exchange instance.
    symbol, timeframe : market and bar size.
    history : bars fetched at start to warm the signal window (yielded ``warmup_only``).
    poll_seconds : sleep between polls.
    clock : ``() -> ms`` (injectable for tests).
    max_polls : stop after this many polls without a new bar (None: forever).

    ``stop_requested`` (``() -> bool``, set by the runner) is checked between polls and several
    times a second while waiting: a kill switch or SIGTERM ends the feed at once instead of at
    the next closed candle, which may be an hour or a day away.
    """

    stop_requested: Callable[[], bool] | None = None

    def __init__(self, exchange, symbol: str, timeframe: str, history: int = 100,
                 poll_seconds: float = 5.0, clock: Callable[[], int] | None = None,
                 max_polls: int | None = None, retries: int = 5):
        from quantlib.data import timeframe_to_seconds

        self.exchange, self.symbol, self.timeframe = exchange, symbol, timeframe
        self.bar_ms = timeframe_to_seconds(timeframe) * 1000
        self.history, self.poll_seconds = history, poll_seconds
        self.clock = clock or (lambda: int(time.time() * 1000))
        self.max_polls, self.retries = max_polls, retries

    def _fetch(self, since: int | None, limit: int | None) -> list[list]:
        import ccxt

        delay = 0.5
        for attempt in range(self.retries):
            try:
                return self.exchange.fetch_ohlcv(self.symbol, self.timeframe, since=since,
                                                 limit=limit)
            except (ccxt.NetworkError, ccxt.ExchangeNotAvailable) as exc:
                if attempt == self.retries - 1:
                    raise ExchangeError(f"fetch_ohlcv {self.symbol} {self.timeframe}: "
                                        f"{type(exc).__name__} after {self.retries} tries") from None
                time.sleep(delay)
                delay = min(delay * 2, 30.0)
        raise LiveError("unreachable")  # pragma: no cover

    def __iter__(self) -> Iterator[Bar]:
        now = self.clock()
        since = now - (self.history + 2) * self.bar_ms
        last = None
        first = True
        idle = 0
        while not self._stopping():
            rows = self._fetch(since if last is None else last + self.bar_ms, None)
            now = self.clock()
            new = False
            for row in sorted(rows, key=lambda r: r[0]):
                t = int(row[0])
                if (last is not None and t <= last) or t + self.bar_ms > now:
                    continue  # already seen, or the still-forming candle
                last = t
                new = True
                yield Bar(t, *(float(v) for v in row[1:6]), warmup_only=first)
            first = False
            idle = 0 if new else idle + 1
            if self.max_polls is not None and idle >= self.max_polls:
                return
            self._wait(self.poll_seconds)

    def _stopping(self) -> bool:
        return self.stop_requested is not None and bool(self.stop_requested())

    def _wait(self, seconds: float) -> None:
        """Sleep ``seconds``, in slices short enough to notice a stop request."""
        deadline = time.monotonic() + seconds
        while not self._stopping():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.1))


def make_feed(spec_feed: str, *, exchange=None, symbol: str = "", timeframe: str = "1h",
              history: int = 100, **kwargs) -> ReplayFeed | ExchangeFeed:
    """``"replay:FILE"`` -> :class:`ReplayFeed`; ``"exchange"`` -> :class:`ExchangeFeed`."""
    if spec_feed.startswith("replay:"):
        return ReplayFeed(spec_feed.split(":", 1)[1])
    if spec_feed == "exchange":
        if exchange is None:
            raise LiveError("feed 'exchange' needs an exchange connection")
        return ExchangeFeed(exchange, symbol, timeframe, history=history, **kwargs)
    raise LiveError(f"--feed {spec_feed!r}: expected 'exchange' or 'replay:FILE'")


__all__ = ["Bar", "ReplayFeed", "ExchangeFeed", "make_feed", "frame_to_bars"]
