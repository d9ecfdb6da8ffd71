"""Replayed files as closed-candle feeds (``--feed replay:...``, ``replay-perp:...``).

Replayed files are read and validated by :func:`quantlib.data.load_ohlcv` (one loader, one set
of checks and messages for research and trading). When pandas is not loaded yet, as in the
``quantlib live run`` process, the loader runs in a short-lived child process (this module run
as ``python -m quantlib.live.replay_feeds``) that hands back plain arrays: the trading process
itself never imports pandas.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from quantlib.core.timeframes import timeframe_to_seconds
from quantlib.errors import DataError, LiveError, QuantlibError
from quantlib.live.feeds import (
    Bar,
    Feed,
    PerpBar,
    _frame_arrays,
    arrays_to_bars,
    infer_timeframe,
    market_symbol,
)


def read_replay_file(path: str | Path) -> tuple[np.ndarray, np.ndarray, str | None]:
    """``(open times in ms, (n, 5) OHLCV block, symbol)`` of a data file, validated by
    :func:`quantlib.data.load_ohlcv`; in a child process when pandas is not loaded here.
    ``symbol`` is the market the file's own metadata names (Parquet attrs), else None.

    Raises DataError with the loader's own message (file, row, column) when the file is bad.
    """
    path = Path(path)
    if "pandas" in sys.modules:  # nothing to save: load here
        return _load_arrays(path)
    data = _arrays_from_child(path, "replay", [])
    return data["times"], data["values"], str(data["symbol"]) or None


def _arrays_from_child(path: Path, what: str, flags: list[str]) -> dict[str, np.ndarray]:
    """Load ``path`` in a child process (this module's ``__main__``, which may import pandas)
    and return the arrays it saved; the child's DataError text is raised here unchanged."""
    with tempfile.TemporaryDirectory(prefix="quantlib-replay-") as tmp:
        out = Path(tmp) / "arrays.npz"
        done = subprocess.run([sys.executable, "-m", "quantlib.live.replay_feeds", *flags,
                               str(path), str(out)], capture_output=True, text=True)
        error = out.with_suffix(".error")
        if error.exists():
            raise DataError(error.read_text())
        if done.returncode or not out.exists():
            tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
            raise DataError(f"{path}: the {what} loader failed (exit {done.returncode}): {tail}")
        with np.load(out, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}


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
    data = _arrays_from_child(path, "funding", ["--funding"])
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


__all__ = ["PerpReplayFeed", "PortfolioReplayFeed", "ReplayFeed", "parse_replay", "parse_replay_perp", "read_funding_file", "read_replay_file", "save_perp_replay"]


if __name__ == "__main__":
    if sys.argv[1] == "--funding":
        sys.exit(_export_funding(sys.argv[2], sys.argv[3]))
    sys.exit(_export_arrays(sys.argv[1], sys.argv[2]))
