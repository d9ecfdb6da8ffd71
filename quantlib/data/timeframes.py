"""Timeframes as pandas sees them: a bar length as a ``Timedelta``, a timeframe inferred from an
index. The strings and their lengths in seconds are :mod:`quantlib.core.timeframes`."""

from __future__ import annotations

import pandas as pd

from quantlib.core.timeframes import UNIT_SECONDS, timeframe_to_seconds


def timeframe_to_timedelta(timeframe: str) -> pd.Timedelta:
    """The bar length as a pandas Timedelta."""
    return pd.Timedelta(seconds=timeframe_to_seconds(timeframe))


def infer_timeframe(index: pd.DatetimeIndex) -> str | None:
    """The most common spacing of ``index`` as a timeframe string, or None if it has < 2 bars."""
    if len(index) < 2:
        return None
    seconds = int(pd.Series(index[1:] - index[:-1]).mode().iloc[0].total_seconds())
    for unit in ("w", "d", "h", "m", "s"):
        size = UNIT_SECONDS[unit]
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def date_text(ms: int) -> str:
    """Epoch milliseconds as a source string's date: ``YYYY-MM-DD`` at midnight UTC, else
    ``YYYY-MM-DDTHH:MM``.

    Examples
    --------
    >>> date_text(86_400_000), date_text(90_000_000)
    ('1970-01-02', '1970-01-02T01:00')
    """
    stamp = pd.Timestamp(ms, unit="ms", tz="UTC")
    return stamp.strftime("%Y-%m-%d") if stamp == stamp.normalize() else stamp.strftime(
        "%Y-%m-%dT%H:%M")


__all__ = ["date_text", "infer_timeframe", "timeframe_to_timedelta"]
