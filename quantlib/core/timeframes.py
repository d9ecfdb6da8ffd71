"""Timeframe strings (ccxt style: ``1m 5m 15m 1h 4h 1d 1w``) and their lengths in seconds.

The pandas forms (a ``Timedelta``, a timeframe inferred from an index) are research tools and
live in :mod:`quantlib.data.timeframes`.
"""

from __future__ import annotations

import re

from quantlib.errors import ParameterError

UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
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
    return int(match.group(1)) * UNIT_SECONDS[match.group(2)]


def bars_per_year(timeframe: str, year_days: float = 365.0) -> float:
    """Bars in a year of ``year_days`` days (365 for crypto, which trades every day).

    Examples
    --------
    >>> bars_per_year("1d")
    365.0
    """
    return year_days * 86400.0 / timeframe_to_seconds(timeframe)


__all__ = ["UNIT_SECONDS", "bars_per_year", "timeframe_to_seconds"]
