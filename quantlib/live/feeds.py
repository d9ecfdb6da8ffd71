"""Closed candles for the live runner: what a bar is and what a feed knows.

A feed yields :class:`Bar` objects in time order, each a **closed** candle. ``warmup_only`` bars
(history fetched at start-up) fill the signal window but are never traded. A portfolio spec's
feeds yield ``{symbol: Bar}`` on the bar times every market has.

The feeds themselves: replayed files (:mod:`quantlib.live.replay_feeds`), a polled exchange
(:mod:`quantlib.live.exchange_feeds`, :mod:`quantlib.live.perp_feed`), other markets a kind
reads (:mod:`quantlib.live.informative_feeds`); :func:`quantlib.live.feed_factory.make_feed`
turns a ``--feed`` option into one of them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Bar:
    time: int  # candle open time, ms since epoch UTC
    open: float
    high: float
    low: float
    close: float
    volume: float
    warmup_only: bool = False


@dataclass(frozen=True)
class PerpBar(Bar):
    """A closed perpetual-swap candle with what the perp rule needs beside the last price.

    ``mark_open``, ``mark_high``, ``mark_low``: the mark-price candle of the same bar
    (liquidation and funding prices). ``funding``: the funding payments ``(time_ms, rate)``
    published after the previous bar's close and at or before this bar's close (for the first
    bar of a feed: every one at or before its close), in time order. A payment is known to the
    signal from the first close at or after its time and paid at the first open at or after it
    (:mod:`quantlib.core.perp_kinds`, :mod:`quantlib.backtest.perp_nb`).
    """

    mark_open: float = float("nan")
    mark_high: float = float("nan")
    mark_low: float = float("nan")
    funding: tuple[tuple[int, float], ...] = ()


class Feed:
    """A source of closed candles for the runner, and what it knows about them.

    Iterating yields :class:`Bar` (:class:`PerpBar` for a swap) objects in time order, or
    ``{symbol: Bar}`` of one bar time for several markets. The attributes say what the feed
    knows, ``None`` where it does not; the runner refuses a feed that contradicts the spec
    (:func:`~quantlib.live.runner.check_feed_matches`):

    ``name``
        how messages name the feed (default: the class name);
    ``timeframe``
        the bar size (``"1h"``);
    ``symbol``
        the one market it gives;
    ``symbols``
        the markets of a ``{symbol: Bar}`` feed, in the order it gives them;
    ``stop_requested``
        ``() -> bool``, set by the runner: a feed that waits for candles ends its wait when it
        returns True (a replay never waits and need not look).
    """

    name: str = ""
    timeframe: str | None = None
    symbol: str | None = None
    symbols: list[str] | None = None
    stop_requested: Callable[[], bool] | None = None

    def __iter__(self) -> Iterator[Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def label(self) -> str:
        """The feed's name in messages."""
        return self.name or type(self).__name__

    def _stopping(self) -> bool:
        return self.stop_requested is not None and bool(self.stop_requested())


class IterableFeed(Feed):
    """Any iterable of bars as a :class:`Feed`; what it knows is given, else unknown.

    Examples
    --------
    >>> feed = IterableFeed([Bar(0, 1.0, 1.0, 1.0, 1.0, 0.0)], timeframe="1h")
    >>> [bar.time for bar in feed], feed.timeframe, feed.symbol, feed.label()
    ([0], '1h', None, 'IterableFeed')
    """

    def __init__(self, bars: Iterable[Any], *, name: str = "", timeframe: str | None = None,
                 symbol: str | None = None, symbols: list[str] | None = None):
        self.bars, self.name, self.timeframe = bars, name, timeframe
        self.symbol, self.symbols = symbol, symbols

    def __iter__(self) -> Iterator[Any]:
        return iter(self.bars)


def as_feed(source: Feed | Iterable[Any]) -> Feed:
    """``source`` itself when it is a :class:`Feed`; any other iterable of bars (a list, a
    generator, a class of one's own) as an :class:`IterableFeed` that knows nothing about its
    bars: only a Feed's ``timeframe`` and ``symbol(s)`` are checked against the spec."""
    return source if isinstance(source, Feed) else IterableFeed(source)


def ohlcv_time(row: list) -> int:
    """The open time (ms) of one of ccxt's OHLCV rows ``[time, open, high, low, close,
    volume]``."""
    return int(row[0])


def ohlcv_bar(row: list, warmup_only: bool = False) -> Bar:
    """One of ccxt's OHLCV rows ``[time, open, high, low, close, volume]`` as a :class:`Bar`.

    Examples
    --------
    >>> ohlcv_bar([3_600_000, 1, 2, 0.5, 1.5, 10]).close
    1.5
    """
    time_ms, open_, high, low, close, volume = row[:6]
    return Bar(int(time_ms), float(open_), float(high), float(low), float(close),
               float(volume), warmup_only)


def frame_to_bars(df: Any, warmup_only: bool = False) -> list[Bar]:
    """Canonical OHLCV frame -> list of bars."""
    times, values = _frame_arrays(df)
    return arrays_to_bars(times, values, warmup_only)


def arrays_to_bars(times_ms: np.ndarray, values: np.ndarray,
                   warmup_only: bool = False) -> list[Bar]:
    """Bars from open times (int64 ms) and an ``(n, 5)`` block of open/high/low/close/volume."""
    return [Bar(int(t), *map(float, row), warmup_only)
            for t, row in zip(times_ms.tolist(), values.tolist(), strict=True)]


def _frame_arrays(df: Any) -> tuple[np.ndarray, np.ndarray]:
    times = df.index.as_unit("ms").asi8
    values = df[["open", "high", "low", "close", "volume"]].to_numpy(dtype=np.float64)
    return np.asarray(times, dtype=np.int64), values


_UNIT_MS = (("w", 604_800_000), ("d", 86_400_000), ("h", 3_600_000), ("m", 60_000),
            ("s", 1000))


def infer_timeframe(times_ms: np.ndarray) -> str | None:
    """The bars' most common spacing as a timeframe string (None for fewer than 2 bars).

    The most common spacing, not the smallest: a gap or a duplicate-free outlier must not
    change what a file of hourly bars is.

    Examples
    --------
    >>> infer_timeframe(np.array([0, 300_000, 600_000, 1_500_000]))
    '5m'
    """
    steps = np.diff(np.asarray(times_ms, dtype=np.int64))
    steps = steps[steps > 0]
    if steps.size == 0:
        return None
    values, counts = np.unique(steps, return_counts=True)
    step = int(values[np.argmax(counts)])
    for unit, size in _UNIT_MS:
        if step % size == 0:
            return f"{step // size}{unit}"
    return f"{step}ms"


def market_symbol(attrs: dict) -> str | None:
    """The market a frame's ``attrs`` name, when they name one (synthetic data and CSV files,
    whose "symbol" is the file name, name none)."""
    symbol = attrs.get("symbol")
    if attrs.get("source") == "synthetic" or not isinstance(symbol, str) or "/" not in symbol:
        return None
    return symbol


__all__ = ["Bar", "Feed", "IterableFeed", "PerpBar", "arrays_to_bars", "as_feed", "frame_to_bars", "infer_timeframe", "market_symbol", "ohlcv_bar", "ohlcv_time"]
