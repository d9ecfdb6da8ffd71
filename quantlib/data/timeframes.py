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


__all__ = ["timeframe_to_timedelta", "infer_timeframe"]
