"""Aggregating bars to a coarser timeframe."""

from __future__ import annotations

import pandas as pd

from quantlib.core.timeframes import timeframe_to_seconds
from quantlib.data.ohlcv import validate_ohlcv
from quantlib.data.timeframes import infer_timeframe, timeframe_to_timedelta
from quantlib.errors import ParameterError


def resample(df: pd.DataFrame, timeframe: str, *, keep_incomplete: bool = False) -> pd.DataFrame:
    """Aggregate ``df`` to ``timeframe``: first open, max high, min low, last close, summed volume.

    Bars are aligned to UTC boundaries (a 4h bar starts at 00:00, 04:00, ... UTC). The last bar is
    dropped when the source does not yet cover its whole period (it would still be open), unless
    ``keep_incomplete=True``. Periods with no source bar at all (gaps) produce no row.

    Examples
    --------
    >>> from quantlib.data import synthetic_ohlcv
    >>> hourly = synthetic_ohlcv(48, timeframe="1h", seed=0).ohlcv
    >>> len(resample(hourly, "4h"))
    12
    """
    source_tf = df.attrs.get("timeframe") or infer_timeframe(df.index)
    target_seconds = timeframe_to_seconds(timeframe)
    if source_tf and target_seconds < timeframe_to_seconds(source_tf):
        raise ParameterError(f"resample: target timeframe {timeframe!r} is finer than the data's "
                             f"{source_tf!r}; only aggregation to coarser bars is possible")
    step = timeframe_to_timedelta(timeframe)
    grouped = df.resample(step, origin="epoch", label="left", closed="left")
    out = grouped.agg({"open": "first", "high": "max", "low": "min", "close": "last",
                       "volume": "sum"})
    out = out.dropna(subset=["open"])
    if not keep_incomplete and len(out) and source_tf:
        covered_until = df.index[-1] + timeframe_to_timedelta(source_tf)
        if out.index[-1] + step > covered_until:
            out = out.iloc[:-1]
    out.index.name = "timestamp"
    out = out.astype("float64")
    out.attrs = dict(df.attrs)
    out.attrs["timeframe"] = timeframe
    if "source_string" in out.attrs:
        out.attrs["source_string"] = f"{out.attrs['source_string']}@{timeframe}"
    validate_ohlcv(out, timeframe)
    return out


__all__ = ["resample"]
