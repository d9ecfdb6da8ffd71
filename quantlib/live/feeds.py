"""Closed-candle feeds for the live runner: a replayed file or a polled exchange.

A feed yields :class:`Bar` objects in time order, each a **closed** candle. ``warmup_only`` bars
(history fetched at start-up) fill the signal window but are never traded.

Replayed files are read and validated by :func:`quantlib.data.load_ohlcv` (one loader, one set
of checks and messages for research and trading). When pandas is not loaded yet, as in the
``quantlib live run`` process, the loader runs in a short-lived child process that hands back
plain arrays: the trading process itself never imports pandas.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from quantlib.errors import DataError, ExchangeError, LiveError


@dataclass(frozen=True)
class Bar:
    time: int  # candle open time, ms since epoch UTC
    open: float
    high: float
    low: float
    close: float
    volume: float
    warmup_only: bool = False


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


def read_replay_file(path: str | Path) -> tuple[np.ndarray, np.ndarray, str | None]:
    """``(open times in ms, (n, 5) OHLCV block, timeframe)`` of a data file, validated by
    :func:`quantlib.data.load_ohlcv`; in a child process when pandas is not loaded here.

    Raises DataError with the loader's own message (file, row, column) when the file is bad.
    """
    path = Path(path)
    if "pandas" in sys.modules:  # nothing to save: load here
        return _load_arrays(path)
    with tempfile.TemporaryDirectory(prefix="quantlib-replay-") as tmp:
        out = Path(tmp) / "bars.npz"
        done = subprocess.run([sys.executable, "-m", "quantlib.live.feeds", str(path), str(out)],
                              capture_output=True, text=True)
        error = out.with_suffix(".error")
        if error.exists():
            raise DataError(error.read_text())
        if done.returncode or not out.exists():
            tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
            raise DataError(f"{path}: the replay loader failed (exit {done.returncode}): {tail}")
        with np.load(out, allow_pickle=False) as data:
            timeframe = str(data["timeframe"]) or None
            return data["times"], data["values"], timeframe


def _load_arrays(path: Path) -> tuple[np.ndarray, np.ndarray, str | None]:
    from quantlib.data import load_ohlcv

    frame = load_ohlcv(path)
    times, values = _frame_arrays(frame)
    return times, values, frame.attrs.get("timeframe")


def _export_arrays(source: str, target: str) -> int:
    """Child process of :func:`read_replay_file`: load ``source``, write arrays to ``target``."""
    from quantlib.errors import QuantlibError

    try:
        times, values, timeframe = _load_arrays(Path(source))
    except QuantlibError as exc:
        Path(target).with_suffix(".error").write_text(str(exc))
        return 2
    np.savez(target, times=times, values=values, timeframe=np.str_(timeframe or ""))
    return 0


class ReplayFeed:
    """Replay a data file (or frame) bar by bar, as fast as possible.

    Parameters
    ----------
    source : path of an OHLCV file readable by :func:`quantlib.data.load_ohlcv`, or a frame.
    """

    def __init__(self, source: str | Path | Any):
        if isinstance(source, str | Path):
            self.times, self.values, self.timeframe = read_replay_file(source)
        else:
            self.times, self.values = _frame_arrays(source)
            self.timeframe = source.attrs.get("timeframe")

    def __len__(self) -> int:
        return len(self.times)

    def __iter__(self) -> Iterator[Bar]:
        return iter(arrays_to_bars(self.times, self.values))


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


__all__ = ["Bar", "ReplayFeed", "ExchangeFeed", "arrays_to_bars", "frame_to_bars", "make_feed",
           "read_replay_file"]


if __name__ == "__main__":
    sys.exit(_export_arrays(sys.argv[1], sys.argv[2]))
