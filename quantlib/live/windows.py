"""The bounded windows the live signal is evaluated on (the registry's finite-memory contract).

:class:`SignalWindow` keeps the last ``warmup + 1`` closed candles of one market;
:class:`FundingWindow` keeps the funding payments a perp signal's window can see. The runner
pushes each closed bar into them; the bar paths (:mod:`quantlib.live.paths`) read them.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from quantlib.core.bars import COLUMNS, Bars
from quantlib.errors import LiveError
from quantlib.live.feeds import Bar, PerpBar


class SignalWindow:
    """The bounded window of closed candles the signal is evaluated on (finite memory).

    Examples
    --------
    >>> window = SignalWindow(2)
    >>> for t in range(3):
    ...     window.push(Bar(t * 3_600_000, 1.0 + t, 2.0 + t, 0.5 + t, 1.5 + t, 10.0))
    >>> [bar.time for bar in window.rows], window.ohlc()[:, 3].tolist()
    ([3600000, 7200000], [2.5, 3.5])
    """

    def __init__(self, size: int):
        self.size = max(int(size), 1)
        self.rows: deque[Bar] = deque(maxlen=self.size)
        # The same bars as arrays (one row per column, oldest first), kept in step with
        # ``rows``: building the signal's Bars from them is a copy, not a loop over Bar objects.
        self._values = np.empty((len(COLUMNS), self.size))
        self._ns = np.empty(self.size, dtype=np.int64)

    def push(self, bar: Bar) -> None:
        n = len(self.rows)
        if n == self.size:
            self._values[:, :-1] = self._values[:, 1:]
            self._ns[:-1] = self._ns[1:]
            n -= 1
        self._values[:, n] = (bar.open, bar.high, bar.low, bar.close, bar.volume)
        self._ns[n] = bar.time * 1_000_000
        self.rows.append(bar)

    def ohlc(self) -> np.ndarray:
        """The window's bars as rows (open, high, low, close), oldest first."""
        return self._values[:4, : len(self.rows)].T.copy()

    def bars(self, timeframe: str, symbol: str) -> Bars:
        """The window as :class:`~quantlib.core.bars.Bars` (copies: the buffers move on)."""
        n = len(self.rows)
        return Bars.from_arrays(self._ns[:n].copy(), self._values[:, :n].copy(),
                                {"timeframe": timeframe, "symbol": symbol, "source": "live"})


class FundingWindow:
    """The funding payments a perp signal's window can see: those published by the closes of
    the window's bars, plus the latest one before the window (the rate known at its first
    close). Fed with each :class:`~quantlib.live.feeds.PerpBar` the window takes.

    Parameters
    ----------
    bar_ms : the bar length (a bar's close is its open plus this).
    """

    def __init__(self, bar_ms: int):
        self.bar_ms = int(bar_ms)
        self.events: list[tuple[int, float]] = []

    def push(self, bar: Bar, window: SignalWindow) -> None:
        if not isinstance(bar, PerpBar):
            raise LiveError("a perp spec needs a perp feed (candles with mark and funding: "
                            "--feed replay-perp:...); the feed gave plain candles")
        seen = self.events[-1][0] if self.events else None
        self.events.extend((int(t), float(r)) for t, r in bar.funding
                           if seen is None or int(t) > seen)
        first_close = window.rows[0].time + self.bar_ms
        keep = 0  # the latest payment at or before the window's first close, and later ones
        for i, (t, _) in enumerate(self.events):
            if t <= first_close:
                keep = i
        del self.events[:keep]

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """``(times in ns, rates)``, the arrays :func:`~quantlib.core.perp_kinds.with_funding`
        takes."""
        times = np.array([t for t, _ in self.events], dtype=np.int64) * 1_000_000
        return times, np.array([r for _, r in self.events], dtype=np.float64)


__all__ = ["FundingWindow", "SignalWindow"]
