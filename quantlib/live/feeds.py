"""Closed-candle feeds for the live runner: a replayed file or a polled exchange.

A feed yields :class:`Bar` objects in time order, each a **closed** candle. ``warmup_only`` bars
(history fetched at start-up) fill the signal window but are never traded.

A portfolio spec's feeds yield ``{symbol: Bar}`` on the bar times every market has. A one-symbol
spec whose kind reads other markets (informative inputs, e.g. BTC's regime gating ETH) gets the
informative feeds (:mod:`quantlib.live.informative_feeds`): ``{symbol: Bar}`` per bar time of any market, a time yielded only once it is
settled in every market, so the traded bar is decided once, after every input's candle closed.

Replayed files are read and validated by :func:`quantlib.data.load_ohlcv` (one loader, one set
of checks and messages for research and trading). When pandas is not loaded yet, as in the
``quantlib live run`` process, the loader runs in a short-lived child process that hands back
plain arrays: the trading process itself never imports pandas.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from quantlib.core.timeframes import timeframe_to_seconds
from quantlib.errors import DataError, ExchangeError, LiveError, QuantlibError


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


def read_replay_file(path: str | Path) -> tuple[np.ndarray, np.ndarray, str | None]:
    """``(open times in ms, (n, 5) OHLCV block, symbol)`` of a data file, validated by
    :func:`quantlib.data.load_ohlcv`; in a child process when pandas is not loaded here.
    ``symbol`` is the market the file's own metadata names (Parquet attrs), else None.

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
            symbol = str(data["symbol"]) or None
            return data["times"], data["values"], symbol


def _load_arrays(path: Path) -> tuple[np.ndarray, np.ndarray, str | None]:
    from quantlib.data import load_ohlcv

    frame = load_ohlcv(path)
    times, values = _frame_arrays(frame)
    return times, values, _file_symbol(path)


def _file_symbol(path: Path) -> str | None:
    # load_ohlcv names a file's market after the file; a Parquet file written from a frame
    # keeps that frame's attrs, which may name the real market.
    if path.suffix.lower() not in (".parquet", ".pq"):
        return None
    import pyarrow.parquet as pq

    try:
        raw = (pq.read_schema(path).metadata or {}).get(b"PANDAS_ATTRS")
        attrs = json.loads(raw) if raw else {}
    except (OSError, ValueError):
        return None
    return market_symbol(attrs) if isinstance(attrs, dict) else None


def _export_arrays(source: str, target: str) -> int:
    """Child process of :func:`read_replay_file`: load ``source``, write arrays to ``target``."""
    try:
        times, values, symbol = _load_arrays(Path(source))
    except QuantlibError as exc:
        Path(target).with_suffix(".error").write_text(str(exc))
        return 2
    np.savez(target, times=times, values=values, symbol=np.str_(symbol or ""))
    return 0


def read_funding_file(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``(funding times in ms, rates)`` of a funding file, validated by
    :func:`quantlib.data.perp.validate_funding`: a CSV with columns ``timestamp`` (UTC) and
    ``funding_rate``, or a Parquet funding cache; in a child process when pandas is not loaded
    here (as :func:`read_replay_file`). DataError names the file, row and field when bad."""
    path = Path(path)
    if "pandas" in sys.modules:
        return _load_funding(path)
    with tempfile.TemporaryDirectory(prefix="quantlib-replay-") as tmp:
        out = Path(tmp) / "funding.npz"
        done = subprocess.run([sys.executable, "-m", "quantlib.live.feeds", "--funding",
                               str(path), str(out)], capture_output=True, text=True)
        error = out.with_suffix(".error")
        if error.exists():
            raise DataError(error.read_text())
        if done.returncode or not out.exists():
            tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
            raise DataError(f"{path}: the funding loader failed (exit {done.returncode}): {tail}")
        with np.load(out, allow_pickle=False) as data:
            return data["times"], data["rates"]


def _load_funding(path: Path) -> tuple[np.ndarray, np.ndarray]:
    import pandas as pd

    from quantlib.data.perp import validate_funding

    if not path.is_file():
        raise DataError(f"{path}: no such funding file")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        else:
            raw = pd.read_csv(path)
            if "timestamp" not in raw.columns:
                raise DataError(f"{path}: a funding CSV needs the columns timestamp and "
                                f"funding_rate, got {list(raw.columns)}")
            index = pd.DatetimeIndex(pd.to_datetime(raw.pop("timestamp"), utc=True),
                                     name="timestamp")
            frame = raw.set_index(index)
    except (ValueError, OSError) as exc:
        raise DataError(f"{path}: cannot read the funding file ({exc})") from None
    if "funding_rate" in frame.columns:
        frame = frame.astype({"funding_rate": np.float64})
    validate_funding(frame, name=str(path))
    return frame.index.as_unit("ms").asi8.astype(np.int64), frame["funding_rate"].to_numpy()


def _export_funding(source: str, target: str) -> int:
    """Child process of :func:`read_funding_file`."""
    try:
        times, rates = _load_funding(Path(source))
    except QuantlibError as exc:
        Path(target).with_suffix(".error").write_text(str(exc))
        return 2
    np.savez(target, times=times, rates=rates)
    return 0


class ReplayFeed(Feed):
    """Replay a data file (or frame) bar by bar, as fast as possible.

    Parameters
    ----------
    source : path of an OHLCV file readable by :func:`quantlib.data.load_ohlcv`, or a frame.

    ``timeframe`` is inferred from the bars themselves (never trusted from metadata) and
    ``symbol`` is the market the data names, or None; the runner refuses a feed whose
    timeframe or symbol differs from the spec's.
    """

    def __init__(self, source: str | Path | Any):
        if isinstance(source, str | Path):
            self.name = str(source)
            self.times, self.values, self.symbol = read_replay_file(source)
        else:
            self.name = "replayed frame"
            self.times, self.values = _frame_arrays(source)
            self.symbol = market_symbol(dict(source.attrs))
        self.timeframe = infer_timeframe(self.times)

    def __len__(self) -> int:
        return len(self.times)

    def __iter__(self) -> Iterator[Bar]:
        return iter(arrays_to_bars(self.times, self.values))


class PortfolioReplayFeed(Feed):
    """Replay one file per symbol of a portfolio spec, as ``{symbol: Bar}`` per bar time.

    The symbols are aligned on the bar times every file has, as the backtest aligns a
    ``{symbol: frame}`` portfolio (:func:`quantlib.backtest.engine.as_frames`): a bar missing
    from one file is skipped for all.

    Parameters
    ----------
    sources : ``{symbol: path or frame}`` in the spec's symbol order.
    """

    def __init__(self, sources: dict[str, Any]):
        if not sources:
            raise LiveError("portfolio replay feed: no files given")
        self.feeds = {symbol: ReplayFeed(src) for symbol, src in sources.items()}
        self.symbols = list(self.feeds)
        self.name = ",".join(f"{s}={f.name}" for s, f in self.feeds.items())
        for symbol, feed in self.feeds.items():
            if feed.symbol is not None and feed.symbol != symbol:
                raise LiveError(f"replay file {feed.name} holds {feed.symbol}, given for "
                                f"{symbol}")
        timeframes = {s: f.timeframe for s, f in self.feeds.items()}
        if len(set(timeframes.values())) > 1:
            raise LiveError(f"portfolio replay feed: the files have different timeframes "
                            f"{timeframes}")
        self.timeframe = next(iter(timeframes.values()))
        common = None
        for feed in self.feeds.values():
            common = feed.times if common is None else np.intersect1d(common, feed.times)
        if common is None or len(common) < 2:
            raise LiveError(f"portfolio replay feed {self.name}: the files share fewer than 2 "
                            "bar times")
        self.times = common

    def __len__(self) -> int:
        return len(self.times)

    def __iter__(self) -> Iterator[dict[str, Bar]]:
        rows = {}
        for symbol, feed in self.feeds.items():
            keep = np.isin(feed.times, self.times)
            rows[symbol] = arrays_to_bars(feed.times[keep], feed.values[keep])
        for i in range(len(self.times)):
            yield {symbol: bars[i] for symbol, bars in rows.items()}


class PerpReplayFeed(Feed):
    """Replay a perpetual swap bar by bar: candles, their mark-price candles and funding.

    Parameters
    ----------
    candles : OHLCV file (or frame) of the last price.
    mark : OHLCV file (or frame) of the mark price on exactly the candles' bars; None: the
        last price (as the perp backtest without ``mark``).
    funding : funding file (:func:`read_funding_file`) or ``(times_ms, rates)``; None: none.

    Yields :class:`PerpBar` objects; a bar carries the payments published after the previous
    bar's close and at or before its own (the first bar: every one up to its close).
    """

    def __init__(self, candles: str | Path | Any, mark: str | Path | Any | None = None,
                 funding: str | Path | tuple | None = None):
        self.candles = ReplayFeed(candles)
        self.name, self.symbol = self.candles.name, self.candles.symbol
        self.timeframe = self.candles.timeframe
        self.times = self.candles.times
        if len(self.times) < 2:
            raise LiveError(f"perp replay feed {self.name}: needs at least 2 bars")
        self.mark = self.candles.values[:, :3]
        if mark is not None:
            marks = ReplayFeed(mark)
            if not np.array_equal(marks.times, self.times):
                raise LiveError(f"perp replay feed: mark file {marks.name} must hold exactly the "
                                f"bars of {self.name} ({len(marks.times)} vs {len(self.times)} "
                                "bars, or other times)")
            self.mark = marks.values[:, :3]
        if funding is None:
            self.funding = (np.empty(0, np.int64), np.empty(0))
        elif isinstance(funding, tuple):
            self.funding = (np.asarray(funding[0], np.int64), np.asarray(funding[1], float))
        else:
            self.funding = read_funding_file(funding)
        self.bar_ms = timeframe_to_seconds(self.timeframe) * 1000  # a bar closes one step on

    def __len__(self) -> int:
        return len(self.times)

    def __iter__(self) -> Iterator[PerpBar]:
        f_times, f_rates = self.funding
        closes = self.times + self.bar_ms
        # payments published in (previous close, this close]; the first bar: up to its close
        ends = np.searchsorted(f_times, closes, side="right")
        start = 0
        for i, row in enumerate(self.candles.values.tolist()):
            events = tuple((int(t), float(r)) for t, r in
                           zip(f_times[start:ends[i]].tolist(), f_rates[start:ends[i]].tolist(),
                               strict=True))
            start = ends[i]
            m_open, m_high, m_low = (float(v) for v in self.mark[i])
            yield PerpBar(int(self.times[i]), *map(float, row), False, m_open, m_high, m_low,
                          events)


def parse_replay_perp(feed: str) -> dict[str, str | None]:
    """The files of ``--feed replay-perp:CANDLES[,mark=FILE][,funding=FILE]``.

    Examples
    --------
    >>> parse_replay_perp("replay-perp:btc.csv,mark=btc_mark.csv,funding=btc_funding.csv")
    {'candles': 'btc.csv', 'mark': 'btc_mark.csv', 'funding': 'btc_funding.csv'}
    """
    parts = feed.split(":", 1)[1].split(",")
    out: dict[str, str | None] = {"candles": parts[0] or None, "mark": None, "funding": None}
    for part in parts[1:]:
        key, sep, path = part.partition("=")
        if not sep or key not in ("mark", "funding") or not path or out[key] is not None:
            raise LiveError(f"--feed {feed!r}: expected replay-perp:CANDLES[,mark=FILE]"
                            f"[,funding=FILE] (got the part {part!r})")
        out[key] = path
    if out["candles"] is None:
        raise LiveError(f"--feed {feed!r}: name the candles file, replay-perp:CANDLES,...")
    return out


def save_perp_replay(perp: Any, folder: str | Path) -> str:
    """Write a :class:`~quantlib.data.perp.PerpData` as replay files (``candles.csv``,
    ``mark.csv``, ``funding.csv`` in ``folder``) and return their ``--feed`` string."""
    from quantlib.data import save_ohlcv

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {name: folder / f"{name}.csv" for name in ("candles", "mark", "funding")}
    save_ohlcv(perp.ohlcv, paths["candles"])
    save_ohlcv(perp.mark, paths["mark"])
    funding = perp.funding.copy()
    funding.index.name = "timestamp"
    funding.to_csv(paths["funding"])
    return (f"replay-perp:{paths['candles']},mark={paths['mark']},"
            f"funding={paths['funding']}")


def parse_replay(feed: str) -> str | dict[str, str]:
    """The file(s) of a ``--feed replay:...`` option: ``replay:FILE`` (one symbol) or
    ``replay:SYMBOL=FILE,SYMBOL=FILE,...`` (a portfolio, one file per spec symbol).

    Examples
    --------
    >>> parse_replay("replay:btc.csv")
    'btc.csv'
    >>> parse_replay("replay:BTC/USD=btc.csv,ETH/USD=eth.csv")
    {'BTC/USD': 'btc.csv', 'ETH/USD': 'eth.csv'}
    """
    body = feed.split(":", 1)[1]
    parts = body.split(",")
    if not any("=" in p and "/" in p.split("=", 1)[0] for p in parts):
        return body
    files = {}
    for part in parts:
        symbol, sep, path = part.partition("=")
        if not sep or not path or "/" not in symbol:
            raise LiveError(f"--feed {feed!r}: expected replay:SYMBOL=FILE,SYMBOL=FILE,... "
                            f"(got the part {part!r})")
        if symbol in files:
            raise LiveError(f"--feed {feed!r}: {symbol} is given twice")
        files[symbol] = path
    return files


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


def make_feed(spec_feed: str, *, exchange=None, symbol: str = "", timeframe: str = "1h",
              history: int = 100, inputs: list[str] | None = None, **kwargs
              ) -> ReplayFeed | PortfolioReplayFeed | ExchangeFeed | PortfolioExchangeFeed:
    """``"replay:FILE"`` -> :class:`ReplayFeed`; ``"replay:SYM=FILE,..."`` ->
    :class:`PortfolioReplayFeed`, or an ``InformativeReplayFeed`` when ``inputs`` (the other
    markets a one-symbol spec reads, :func:`~quantlib.live.informative_feeds.spec_input_symbols`)
    are given; ``"exchange"`` -> :class:`ExchangeFeed`, or an ``InformativeExchangeFeed`` of
    ``symbol`` and ``inputs`` (:mod:`quantlib.live.informative_feeds`)."""
    if spec_feed.startswith("replay-perp:"):
        files = parse_replay_perp(spec_feed)
        return PerpReplayFeed(files["candles"], files["mark"], files["funding"])
    if spec_feed.startswith("replay:"):
        files = parse_replay(spec_feed)
        if isinstance(files, dict):
            if inputs:
                from quantlib.live.informative_feeds import InformativeReplayFeed

                return InformativeReplayFeed(files)
            return PortfolioReplayFeed(files)
        return ReplayFeed(files)
    if spec_feed == "exchange":
        if exchange is None:
            raise LiveError("feed 'exchange' needs an exchange connection")
        if inputs:
            from quantlib.live.informative_feeds import InformativeExchangeFeed

            return InformativeExchangeFeed(exchange, [symbol, *inputs], timeframe,
                                           history=history, **kwargs)
        return ExchangeFeed(exchange, symbol, timeframe, history=history, **kwargs)
    raise LiveError(f"--feed {spec_feed!r}: expected 'exchange' or 'replay:FILE'")


__all__ = ["Bar", "Feed", "IterableFeed", "PerpBar", "as_feed", "ohlcv_bar", "ohlcv_time", "PerpReplayFeed", "ReplayFeed", "parse_replay_perp",
           "read_funding_file", "save_perp_replay", "PortfolioReplayFeed", "PortfolioExchangeFeed",
           "parse_replay", "ExchangeFeed", "PollingFeed", "arrays_to_bars", "frame_to_bars", "make_feed",
           "read_replay_file", "infer_timeframe", "market_symbol"]


if __name__ == "__main__":
    if sys.argv[1] == "--funding":
        sys.exit(_export_funding(sys.argv[2], sys.argv[3]))
    sys.exit(_export_arrays(sys.argv[1], sys.argv[2]))
