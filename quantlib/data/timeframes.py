"""Timeframe strings (ccxt style: ``1m 5m 15m 1h 4h 1d 1w``) and their lengths."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from quantlib.errors import ParameterError

if TYPE_CHECKING:  # pandas only where a Timedelta or an index is involved: the trader never is
    import pandas as pd

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PATTERN = re.compile(r"^(\d+)([smhdw])$")


def timeframe_to_seconds(timeframe: str) -> int:
    """Length of one bar in seconds.

    Examples
    --------
    >>> timeframe_to_seconds("4h")
    14400
    """
    match = _PATTERN.match(str(timeframe).strip())
    if not match or int(match.group(1)) == 0:
        raise ParameterError(
            f"timeframe {timeframe!r} is not understood; expected a number and a unit "
            "s, m, h, d or w, e.g. '5m', '1h', '1d'"
        )
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def timeframe_to_timedelta(timeframe: str) -> pd.Timedelta:
    """The bar length as a pandas Timedelta."""
    import pandas as pd

    return pd.Timedelta(seconds=timeframe_to_seconds(timeframe))


def bars_per_year(timeframe: str, year_days: float = 365.0) -> float:
    """Bars in a year of ``year_days`` days (365 for crypto, which trades every day)."""
    return year_days * 86400.0 / timeframe_to_seconds(timeframe)


def infer_timeframe(index: pd.DatetimeIndex) -> str | None:
    """The most common spacing of ``index`` as a timeframe string, or None if it has < 2 bars."""
    if len(index) < 2:
        return None
    import pandas as pd

    seconds = int(pd.Series(index[1:] - index[:-1]).mode().iloc[0].total_seconds())
    for unit in ("w", "d", "h", "m", "s"):
        size = _UNIT_SECONDS[unit]
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


__all__ = ["timeframe_to_seconds", "timeframe_to_timedelta", "bars_per_year", "infer_timeframe"]
