"""The canonical OHLCV frame and its validator.

Canonical layout: a tz-aware UTC ``DatetimeIndex`` named ``timestamp``, strictly increasing and
unique, and float64 columns exactly ``open high low close volume``. Metadata (``source``,
``source_string``, ``exchange``, ``symbol``, ``timeframe``) lives in ``df.attrs``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from quantlib.data.timeframes import infer_timeframe, timeframe_to_timedelta
from quantlib.errors import DataError, ParameterError

OHLCV_COLUMNS = ("open", "high", "low", "close", "volume")
PRICE_COLUMNS = ("open", "high", "low", "close")


@dataclass
class ValidationSummary:
    """What :func:`validate_ohlcv` found. ``frame`` is the canonical (possibly gap-filled) data."""

    frame: pd.DataFrame
    timeframe: str | None
    n_bars: int
    first_bar: pd.Timestamp | None
    last_bar: pd.Timestamp | None
    gaps: pd.DataFrame = field(repr=False)
    n_missing: int = 0
    misaligned: np.ndarray = field(default_factory=lambda: np.array([], dtype=np.int64), repr=False)
    filled: bool = False

    def to_dict(self) -> dict:
        return {
            "n_bars": self.n_bars,
            "timeframe": self.timeframe,
            "first_bar": str(self.first_bar) if self.first_bar is not None else None,
            "last_bar": str(self.last_bar) if self.last_bar is not None else None,
            "n_gaps": len(self.gaps),
            "n_missing_bars": self.n_missing,
            "n_misaligned_bars": len(self.misaligned),
            "gaps_filled": self.filled,
        }


# Where row i of a frame came from in its file, e.g. "line 7 of the file" (see load_ohlcv).
RowOrigin = Callable[[int], "str | None"]


def _where(name: str | None) -> str:
    return f"{name}: " if name else ""


def _row(df: pd.DataFrame, row: int, origin: RowOrigin | None, timestamp: bool = True) -> str:
    """``row 3 (line 5 of the file, timestamp ...)``: the 0-based row, and where it sits in the
    file it was read from (people count lines from 1, with the header as line 1)."""
    details = [origin(row)] if origin is not None else []
    if timestamp:
        details.append(f"timestamp {df.index[row]}")
    details = [d for d in details if d]
    return f"row {row}" + (f" ({', '.join(details)})" if details else "")


def _row_error(name: str | None, df: pd.DataFrame, mask: np.ndarray, column: str, problem: str,
               origin: RowOrigin | None = None):
    rows = np.flatnonzero(mask)
    first = int(rows[0])
    more = f" (and {len(rows) - 1} more rows)" if len(rows) > 1 else ""
    return DataError(
        f"{_where(name)}{_row(df, first, origin)}, column {column!r}: {problem}{more}"
    )


def _check_columns(df: pd.DataFrame, name: str | None) -> None:
    missing = [c for c in OHLCV_COLUMNS if c not in df.columns]
    extra = [c for c in df.columns if c not in OHLCV_COLUMNS]
    if missing:
        raise DataError(f"{_where(name)}missing column(s) {missing}; expected {list(OHLCV_COLUMNS)}")
    if extra:
        raise DataError(
            f"{_where(name)}unexpected column(s) {extra}; expected exactly {list(OHLCV_COLUMNS)}"
        )


def _check_index(df: pd.DataFrame, name: str | None, origin: RowOrigin | None = None) -> None:
    if not isinstance(df.index, pd.DatetimeIndex):
        raise DataError(f"{_where(name)}index must be a DatetimeIndex named 'timestamp', "
                        f"got {type(df.index).__name__}")
    if df.index.tz is None or str(df.index.tz) not in ("UTC", "utc"):
        raise DataError(f"{_where(name)}index must be tz-aware UTC, got tz={df.index.tz}")
    if df.index.hasnans:
        row = int(np.argmax(np.asarray(df.index.isna())))
        raise DataError(f"{_where(name)}{_row(df, row, origin, timestamp=False)}, column "
                        "'timestamp': missing timestamp")
    diffs = np.diff(df.index.asi8)
    if np.any(diffs == 0):
        row = int(np.argmax(diffs == 0)) + 1
        raise DataError(f"{_where(name)}{_row(df, row, origin)}, column "
                        f"'timestamp': duplicate timestamp")
    if np.any(diffs < 0):
        row = int(np.argmax(diffs < 0)) + 1
        raise DataError(f"{_where(name)}{_row(df, row, origin)}, column 'timestamp': "
                        f"not sorted (earlier than the row before, {df.index[row - 1]})")


def _check_values(df: pd.DataFrame, name: str | None, origin: RowOrigin | None = None) -> None:
    for column in OHLCV_COLUMNS:
        values = df[column].to_numpy()
        if not np.issubdtype(values.dtype, np.floating):
            raise DataError(f"{_where(name)}column {column!r} must be float64, got {values.dtype}")
        if not np.all(np.isfinite(values)):
            bad = ~np.isfinite(values)
            kind = "NaN" if np.isnan(values[np.argmax(bad)]) else "infinite"
            raise _row_error(name, df, bad, column, f"{kind} value", origin)
    for column in PRICE_COLUMNS:
        values = df[column].to_numpy()
        if np.any(values <= 0):
            raise _row_error(name, df, values <= 0, column,
                             f"non-positive price {values[np.argmax(values <= 0)]}", origin)
    volume = df["volume"].to_numpy()
    if np.any(volume < 0):
        raise _row_error(name, df, volume < 0, "volume", f"negative volume {volume[np.argmax(volume < 0)]}", origin)
    o, h, lo, c = (df[col].to_numpy() for col in PRICE_COLUMNS)
    too_low_high = h < np.maximum(o, c)
    if np.any(too_low_high):
        i = int(np.argmax(too_low_high))
        raise _row_error(name, df, too_low_high, "high",
                         f"high {h[i]} is below max(open, close) = {max(o[i], c[i])}", origin)
    too_high_low = lo > np.minimum(o, c)
    if np.any(too_high_low):
        i = int(np.argmax(too_high_low))
        raise _row_error(name, df, too_high_low, "low",
                         f"low {lo[i]} is above min(open, close) = {min(o[i], c[i])}", origin)


def misaligned_rows(index: pd.DatetimeIndex, timeframe: str) -> np.ndarray:
    """Row numbers whose timestamp is not on the timeframe's UTC grid (e.g. 09:28:14 for 1h)."""
    step_ns = timeframe_to_timedelta(timeframe).value
    return np.flatnonzero(index.as_unit("ns").asi8 % step_ns != 0)


def find_gaps(index: pd.DatetimeIndex, timeframe: str) -> pd.DataFrame:
    """Runs of empty slots on the timeframe's UTC grid between the first and last bar.

    One row per run: ``start`` and ``end`` (first and last missing slot) and ``missing_bars``.
    A bar off the grid (see :func:`misaligned_rows`) does not occupy a slot.
    """
    empty = pd.DataFrame({"start": pd.DatetimeIndex([], tz="UTC"),
                          "end": pd.DatetimeIndex([], tz="UTC"),
                          "missing_bars": np.array([], dtype=np.int64)})
    if len(index) < 2:
        return empty
    step_ns = timeframe_to_timedelta(timeframe).value
    stamps = index.as_unit("ns").asi8
    aligned = stamps[stamps % step_ns == 0] // step_ns
    first = -(-stamps[0] // step_ns)  # first grid slot at or after the first bar
    last = stamps[-1] // step_ns
    occupied = np.zeros(last - first + 1, dtype=bool)
    occupied[aligned - first] = True
    missing = np.flatnonzero(~occupied)
    if len(missing) == 0:
        return empty
    breaks = np.flatnonzero(np.diff(missing) != 1)
    run_starts = np.concatenate([[missing[0]], missing[breaks + 1]])
    run_ends = np.concatenate([missing[breaks], [missing[-1]]])
    to_time = lambda slots: pd.to_datetime((slots + first) * step_ns, utc=True)  # noqa: E731
    return pd.DataFrame({"start": to_time(run_starts), "end": to_time(run_ends),
                         "missing_bars": (run_ends - run_starts + 1).astype(np.int64)})


def _fill_gaps(df: pd.DataFrame, timeframe: str) -> pd.DataFrame:
    # Explicit option only: a missing bar becomes a flat bar at the previous close, zero volume.
    full = pd.date_range(df.index[0], df.index[-1], freq=timeframe_to_timedelta(timeframe),
                         name="timestamp")
    out = df.reindex(full)
    prev_close = out["close"].ffill()
    for column in PRICE_COLUMNS:
        out[column] = out[column].fillna(prev_close)
    out["volume"] = out["volume"].fillna(0.0)
    out.attrs = dict(df.attrs)
    return out


def _usable_timeframe(df: pd.DataFrame, timeframe: str | None, name: str | None) -> str | None:
    """The given, recorded or inferred bar length; DataError when it is none quantlib knows
    (bars less than a second apart infer as "0w")."""
    given = timeframe or df.attrs.get("timeframe")
    timeframe = given or infer_timeframe(df.index)
    if timeframe is None:
        return None
    try:
        timeframe_to_timedelta(timeframe)
    except ParameterError as exc:
        if given:
            raise DataError(f"{_where(name)}{exc}") from None
        spacing = pd.Series(df.index[1:] - df.index[:-1]).mode().iloc[0]
        raise DataError(f"{_where(name)}the bars are mostly {spacing} apart; expected a bar "
                        "length of whole seconds (at least 1s)") from None
    return timeframe


def validate_ohlcv(
    df: pd.DataFrame,
    timeframe: str | None = None,
    *,
    fill_gaps: bool = False,
    name: str | None = None,
    row_origin: RowOrigin | None = None,
) -> ValidationSummary:
    """Check that ``df`` is a canonical OHLCV frame; report gaps; optionally fill them.

    Raises :class:`~quantlib.errors.DataError` naming the row (timestamp), the column and the
    problem for: missing or extra columns, non-UTC/unsorted/duplicate timestamps, NaN or inf,
    non-positive prices, negative volume, ``high < max(open, close)``, ``low > min(open, close)``.
    Gaps (missing bars for the timeframe) are never filled silently: they are listed in
    ``summary.gaps``; ``fill_gaps=True`` fills them with flat zero-volume bars.

    Parameters
    ----------
    df : the frame to check.
    timeframe : bar length (``"1h"``); default ``df.attrs["timeframe"]`` or inferred.
    fill_gaps : fill missing bars explicitly.
    name : label for messages (a file name), default ``df.attrs.get("source_string")``.
    row_origin : ``row_origin(i)`` says where row ``i`` sits in the file it came from (e.g.
        ``"line 7 of the file"``); messages show it next to the 0-based row number.

    Examples
    --------
    >>> from quantlib.data import synthetic_ohlcv
    >>> summary = validate_ohlcv(synthetic_ohlcv(100, seed=1).ohlcv)
    >>> summary.n_bars, summary.n_missing
    (100, 0)
    """
    if not isinstance(df, pd.DataFrame):
        raise DataError(f"expected a pandas DataFrame, got {type(df).__name__}")
    name = name or df.attrs.get("source_string")
    _check_columns(df, name)
    _check_index(df, name, row_origin)
    _check_values(df, name, row_origin)
    timeframe = _usable_timeframe(df, timeframe, name)
    gaps = find_gaps(df.index, timeframe) if timeframe else find_gaps(df.index[:0], "1m")
    misaligned = misaligned_rows(df.index, timeframe) if timeframe else np.array([], np.int64)
    frame = df
    if fill_gaps and len(misaligned):
        row = int(misaligned[0])
        raise DataError(f"{_where(name)}{_row(df, row, row_origin)}, column 'timestamp': "
                        f"not on the {timeframe} grid ({len(misaligned)} such rows); gaps can only "
                        "be filled on aligned data")
    if fill_gaps and len(gaps):
        frame = _fill_gaps(df, timeframe)
    if timeframe:
        frame.attrs.setdefault("timeframe", timeframe)
    return ValidationSummary(
        frame=frame,
        timeframe=timeframe,
        n_bars=len(frame),
        first_bar=frame.index[0] if len(frame) else None,
        last_bar=frame.index[-1] if len(frame) else None,
        gaps=gaps,
        n_missing=int(gaps["missing_bars"].sum()) if len(gaps) else 0,
        misaligned=misaligned,
        filled=bool(fill_gaps and len(gaps)),
    )


__all__ = ["OHLCV_COLUMNS", "RowOrigin", "ValidationSummary", "validate_ohlcv", "find_gaps", "misaligned_rows"]
