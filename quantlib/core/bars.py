"""Closed OHLCV bars as plain numpy arrays: what the built-in strategy kinds compute on.

A :class:`Bars` holds one contiguous float64 array per column (``open high low close
volume``), the bar open times (int64 nanoseconds since the epoch, UTC) and the frame's
``attrs``. Research code passes pandas frames, which :meth:`Bars.from_frame` converts; the live
runner builds bars from its own buffers with :meth:`Bars.from_arrays`, so the process that
trades never imports pandas. A kind written with pandas (``StrategyKind(inputs="frame")``) gets
:meth:`Bars.frame` instead.

:func:`indicator_cache` shares conversions and indicator arrays between the signal calls of a
parameter sweep.

Examples
--------
>>> import numpy as np
>>> bars = Bars.from_arrays(np.array([0, 3_600_000_000_000]), np.array(
...     [[1.0, 2.0], [1.5, 2.5], [0.5, 1.5], [1.2, 2.2], [10.0, 11.0]]), {"timeframe": "1h"})
>>> len(bars), float(bars.close[-1]), bars.label(1)
(2, 2.2, '1970-01-01 01:00:00+00:00')
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from quantlib.errors import DataError

COLUMNS = ("open", "high", "low", "close", "volume")

_CACHE: dict | None = None
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@contextmanager
def indicator_cache() -> Iterator[None]:
    """Share frame conversions and indicator arrays between signal calls (a parameter sweep
    converts each frame and computes each indicator window once).

    The cache holds a reference to every object it keys on, so ids cannot be recycled while it
    is active; it is dropped on exit.
    """
    global _CACHE
    outer = _CACHE
    _CACHE = {} if outer is None else outer
    try:
        yield
    finally:
        _CACHE = outer


def cached(name: str, fn: Callable[..., np.ndarray], x: np.ndarray, *args: Any) -> np.ndarray:
    """``fn(x, *args)``, computed once per ``(name, x, args)`` while :func:`indicator_cache`
    is active."""
    if _CACHE is None:
        return fn(x, *args)
    key = (name, id(x), *args)
    hit = _CACHE.get(key)
    if hit is None:
        hit = (x, fn(x, *args))
        _CACHE[key] = hit
    return hit[1]


class Bars:
    """OHLCV bars as contiguous float64 arrays (see the module doc).

    Parameters
    ----------
    time : int64 bar open times, ns since the epoch (UTC), or None (no timestamps).
    columns : column name -> float64 array, all of the same length; a column the data lacks is
        simply absent (reading it raises DataError).
    attrs : metadata (``timeframe``, ``symbol``, ...), as in a frame's ``attrs``.
    """

    __slots__ = ("_columns", "time", "attrs", "_frame", "_n")

    def __init__(self, time: np.ndarray | None, columns: Mapping[str, np.ndarray],
                 attrs: Mapping[str, Any] | None = None, *, frame: Any = None):
        self._columns = dict(columns)
        lengths = {len(v) for v in self._columns.values()}
        if time is not None:
            lengths.add(len(time))
        if len(lengths) > 1:
            raise DataError(f"bars: columns of different lengths {sorted(lengths)}")
        self._n = lengths.pop() if lengths else 0
        self.time = time
        self.attrs = dict(attrs or {})
        self._frame = frame

    # -- construction --------------------------------------------------------------------------
    @classmethod
    def from_arrays(cls, time_ns: np.ndarray | None, values: np.ndarray,
                    attrs: Mapping[str, Any] | None = None) -> Bars:
        """Bars from a ``(5, n)`` float64 block (rows ``open high low close volume``)."""
        block = np.ascontiguousarray(values, dtype=np.float64)
        if block.ndim != 2 or block.shape[0] != len(COLUMNS):
            raise DataError(f"bars: expected a (5, n) block of open/high/low/close/volume rows, "
                            f"got shape {block.shape}")
        time = None if time_ns is None else np.ascontiguousarray(time_ns, dtype=np.int64)
        return cls(time, dict(zip(COLUMNS, block, strict=True)), attrs)

    @classmethod
    def from_frame(cls, df: Any) -> Bars:
        """Bars of a pandas OHLCV frame (the canonical layout; other columns are ignored).

        Inside :func:`indicator_cache` the same frame object converts once.
        """
        key = ("__bars__", id(df))
        if _CACHE is not None and key in _CACHE:
            return _CACHE[key][1]
        pd = sys.modules.get("pandas")
        if pd is None or not isinstance(df, pd.DataFrame):
            raise DataError(f"expected an OHLCV DataFrame or Bars, got {type(df).__name__}")
        columns = _frame_columns(df)
        time = None
        if isinstance(df.index, pd.DatetimeIndex):
            index = df.index if df.index.tz is None else df.index.tz_convert("UTC")
            time = np.ascontiguousarray(index.as_unit("ns").asi8)
        bars = cls(time, columns, df.attrs, frame=df)
        if _CACHE is not None:
            _CACHE[key] = (df, bars)
        return bars

    # -- access --------------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._n

    def __repr__(self) -> str:
        span = f"{self.label(0)} .. {self.label(self._n - 1)}" if self._n else "empty"
        return f"Bars({self._n} bars, {span}, columns {list(self._columns)})"

    def column(self, name: str) -> np.ndarray:
        """The float64 array of column ``name``; DataError when the data lacks it."""
        try:
            return self._columns[name]
        except KeyError:
            raise DataError(f"OHLCV data lacks column {name!r}; it has {list(self._columns)}"
                            ) from None

    open = property(lambda self: self.column("open"), doc="float64 opens")
    high = property(lambda self: self.column("high"), doc="float64 highs")
    low = property(lambda self: self.column("low"), doc="float64 lows")
    close = property(lambda self: self.column("close"), doc="float64 closes")
    volume = property(lambda self: self.column("volume"), doc="float64 volumes")

    def has(self, name: str) -> bool:
        return name in self._columns

    def epoch_seconds(self) -> np.ndarray:
        """Bar open times in whole seconds since the epoch (UTC); DataError without times."""
        if self.time is None:
            raise DataError("OHLCV data has no timestamps (a frame needs a DatetimeIndex named "
                            "'timestamp')")
        return self.time // 1_000_000_000

    def label(self, row: int) -> str:
        """Row ``row`` as a timestamp for messages (``'2024-01-01 05:00:00+00:00'``, pandas'
        spelling), or ``'row N'`` without timestamps."""
        if self.time is None or not 0 <= row < self._n:
            return f"row {row}"
        # microseconds: datetime's resolution, and what pandas prints for whole-us times
        stamp = _EPOCH + timedelta(microseconds=int(self.time[row]) // 1_000)
        return stamp.isoformat(sep=" ")

    def frame(self) -> Any:
        """These bars as a canonical pandas frame (the original frame when built from one)."""
        if self._frame is None:
            import pandas as pd

            index = None
            if self.time is not None:
                index = pd.DatetimeIndex(self.time.view("M8[ns]"), name="timestamp").tz_localize(
                    "UTC")
            df = pd.DataFrame({name: values.copy() for name, values in self._columns.items()},
                              index=index)
            df.attrs.update(self.attrs)
            self._frame = df
        return self._frame


def _frame_columns(df: Any) -> dict[str, np.ndarray]:
    present = [name for name in COLUMNS if name in df.columns]
    where = [df.columns.get_loc(name) for name in present]
    if all(isinstance(j, int) for j in where):
        try:
            # one 2-D conversion: column access builds a Series and deep-copies df.attrs each time
            block = df.to_numpy(dtype=np.float64, copy=False)
            return {name: np.ascontiguousarray(block[:, j])
                    for name, j in zip(present, where, strict=True)}
        except (TypeError, ValueError):  # a non-numeric column somewhere: convert one by one
            pass
    columns = {}
    for name in present:
        try:
            columns[name] = np.ascontiguousarray(df[name].to_numpy(dtype=np.float64))
        except (TypeError, ValueError):
            raise DataError(f"OHLCV frame: column {name!r} is not numeric "
                            f"(dtype {df[name].dtype})") from None
    return columns


def is_frame(data: Any) -> bool:
    """Is ``data`` a pandas DataFrame? (Without importing pandas when nothing loaded it.)"""
    pd = sys.modules.get("pandas")
    return pd is not None and isinstance(data, pd.DataFrame)


def as_bars(data: Any) -> Bars:
    """``data`` (Bars or a pandas OHLCV frame) as :class:`Bars`."""
    if isinstance(data, Bars):
        return data
    return Bars.from_frame(data)


__all__ = ["COLUMNS", "Bars", "as_bars", "cached", "indicator_cache", "is_frame"]
