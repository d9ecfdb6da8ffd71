"""Feeds of a one-symbol spec whose kind reads other markets (informative inputs, e.g. BTC's
regime gating an ETH strategy): the traded market's closed candles with those of every market
the kind reads, as ``{symbol: Bar}`` per bar time.

Unlike a portfolio's feeds (the bar times every market has), an item is yielded for a bar time
of *any* market once that time is settled everywhere, holding the candles that exist then. The
runner decides only at the traded market's bars, after every input's candle for the bar closed;
an input bar that a market skipped is the alignment's error (symbol, timeframe, time) when the
kind needs it, as in the backtest, never a forward fill.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from quantlib.core.informative import foreign_symbols
from quantlib.core.registry import get_kind
from quantlib.live.exchange_feeds import PortfolioExchangeFeed
from quantlib.live.feeds import Bar, arrays_to_bars, ohlcv_bar
from quantlib.live.replay_feeds import PortfolioReplayFeed


class InformativeReplayFeed(PortfolioReplayFeed):
    """Replay the traded symbol's file with the files of the other symbols its kind reads
    (informative inputs), as ``{symbol: Bar}`` per bar time.

    Unlike a portfolio's, the bar times are those of *any* file, each item holding the candles
    that exist at that time: the runner decides only at the traded symbol's bars, and an input
    bar missing at a time it is needed is the alignment's DataError (symbol, timeframe, time),
    as in the backtest, never a silently skipped bar.

    Parameters
    ----------
    sources : ``{symbol: path or frame}``, the traded symbol first.
    """

    def __init__(self, sources: dict[str, Any]):
        super().__init__(sources)
        self.times = np.unique(np.concatenate([f.times for f in self.feeds.values()]))

    def __iter__(self) -> Iterator[dict[str, Bar]]:
        rows = {s: dict(zip(f.times.tolist(), arrays_to_bars(f.times, f.values), strict=True))
                for s, f in self.feeds.items()}
        for t in self.times.tolist():
            yield {s: rows[s][t] for s in self.symbols if t in rows[s]}


class InformativeExchangeFeed(PortfolioExchangeFeed):
    """Poll the traded market and the other markets its kind reads (informative inputs); yield
    ``{symbol: Bar}`` for a bar time once it is settled in *every* market: each has closed its
    candle at that time, or a later one (then it never will have that time).

    So the traded bar ``t`` is decided once, after every input's candle for ``t`` closed; a
    market still holding its candle back holds the decision back. An item lacks a market only
    when that market skipped the time; if an input needs that bar, the runner's alignment
    names it (symbol, timeframe, time) instead of forward-filling. Parameters are those of
    :class:`PortfolioExchangeFeed`, ``symbols`` = the traded symbol, then the inputs'.
    """

    def __iter__(self) -> Iterator[dict[str, Bar]]:
        start = self.clock()
        since = start - (self.history + 2) * self.bar_ms
        seen: dict[str, int | None] = dict.fromkeys(self.symbols)
        waiting: dict[str, dict[int, list]] = {s: {} for s in self.symbols}
        first, idle = True, 0
        while not self._stopping():
            self._poll(seen, waiting, since, first)
            first = False
            ready: list[int] = []
            if all(last is not None for last in seen.values()):
                settled = min(last for last in seen.values() if last is not None)
                ready = sorted({t for rows in waiting.values() for t in rows if t <= settled})
            for t in ready:
                yield {s: ohlcv_bar(waiting[s].pop(t), warmup_only=t + self.bar_ms <= start)
                       for s in self.symbols if t in waiting[s]}
            idle = 0 if ready else idle + 1
            if self.max_polls is not None and idle >= self.max_polls:
                return
            self.feeds[self.symbols[0]]._wait(self.poll_seconds)


def spec_input_symbols(spec: Any) -> list[str]:
    """The markets a spec's kind reads besides those it trades (its informative inputs' other
    symbols), in declaration order: what its feed must carry too."""
    kind = get_kind(spec.kind)
    return foreign_symbols(kind.informative_inputs(kind.validate(spec.params)), list(spec.symbols))


__all__ = ["InformativeExchangeFeed", "InformativeReplayFeed", "spec_input_symbols"]
