"""The perpetual-swap data contract: :class:`PerpData` (candles plus their ``mark`` and
``funding`` companions), the canonical funding frame and :func:`validate_funding`.

The loaders build on this module: :func:`quantlib.data.perp.load_perp` (sample or exchange) and
:mod:`quantlib.data.perp_fetch` (Binance USD-M through ccxt). The canonical funding frame: a
tz-aware UTC ``DatetimeIndex`` named ``timestamp`` (the funding times, strictly increasing), one
float64 column ``funding_rate`` (fraction of the position's notional per interval; positive:
longs pay shorts); attrs ``source``, ``symbol``, ``funding_interval`` (``"8h"``).
:func:`validate_funding` checks it and reports payments missing from the interval's UTC grid
(gaps) and payments off that grid; nothing is ever filled in.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from quantlib.core.timeframes import timeframe_to_seconds
from quantlib.data.ohlcv import validate_ohlcv
from quantlib.errors import DataError, ParameterError

FUNDING_COLUMNS = ("funding_rate",)
# Venues whose perps load_perp can fetch, and why others are refused (named in the message).
PERP_EXCHANGES = ("binanceusdm",)
# A rate of 100 % of the notional per interval is no real funding: a percent/fraction mix-up.
_MAX_ABS_RATE = 1.0
_DEFAULT_INTERVAL = "8h"


@dataclass
class FundingSummary:
    """What :func:`validate_funding` found."""

    interval: str
    n_payments: int
    first: pd.Timestamp | None
    last: pd.Timestamp | None
    gaps: pd.DataFrame = field(repr=False)
    n_missing: int = 0
    n_off_grid: int = 0
    # (first payment on the new spacing, old interval, new interval), e.g. a venue moving a
    # market from 8 h to 4 h funding
    interval_changes: list[tuple[pd.Timestamp, str, str]] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"funding_interval": self.interval, "n_payments": self.n_payments,
                "first_payment": str(self.first) if self.first is not None else None,
                "last_payment": str(self.last) if self.last is not None else None,
                "n_gaps": len(self.gaps), "n_missing_payments": self.n_missing,
                "n_off_grid_payments": self.n_off_grid,
                "n_interval_changes": len(self.interval_changes)}


def _where(name: str | None) -> str:
    return f"{name}: " if name else ""


def _check_funding_frame(frame: pd.DataFrame, name: str | None) -> None:
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"{_where(name)}funding must be a DataFrame, got {type(frame).__name__}")
    if list(frame.columns) != list(FUNDING_COLUMNS):
        raise DataError(f"{_where(name)}funding columns must be exactly {list(FUNDING_COLUMNS)}, "
                        f"got {list(frame.columns)}")
    index = frame.index
    if not isinstance(index, pd.DatetimeIndex) or str(index.tz) != "UTC":
        got = (f"tz {index.tz}" if isinstance(index, pd.DatetimeIndex)
               else type(index).__name__)
        raise DataError(f"{_where(name)}funding index must be a tz-aware UTC DatetimeIndex "
                        f"(funding times), got {got}")
    try:
        # Grid arithmetic below runs in int64 nanoseconds: refuse what does not fit there.
        nanos = index.as_unit("ns").asi8
        if len(nanos) and nanos.max() > np.iinfo(np.int64).max // 2:
            raise OverflowError
    except (OverflowError, pd.errors.OutOfBoundsDatetime):
        raise DataError(f"{_where(name)}funding times must lie before 2116 (nanosecond "
                        f"arithmetic); the last is {_time_text(index)}: a damaged "
                        "timestamp?") from None
    if len(index) > 1:
        steps = np.diff(nanos)
        if np.any(steps <= 0):
            row = int(np.flatnonzero(steps <= 0)[0]) + 1
            what = "duplicates" if steps[row - 1] == 0 else "is earlier than"
            raise DataError(f"{_where(name)}funding row {row} (timestamp {index[row]}): the time "
                            f"{what} the previous row's ({index[row - 1]}); funding times must "
                            "strictly increase")
    rates = frame["funding_rate"]
    if rates.dtype != np.float64:
        raise DataError(f"{_where(name)}funding column 'funding_rate' must be float64 "
                        f"(fraction per interval), got {rates.dtype}")
    values = rates.to_numpy()
    bad = ~np.isfinite(values) | (np.abs(values) >= _MAX_ABS_RATE)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        problem = ("is not a finite number" if not np.isfinite(values[row]) else
                   f"is {float(values[row])!r}, 100 % or more of the notional per interval (a rate in "
                   "percent instead of a fraction?)")
        more = f" (and {int(bad.sum()) - 1} more rows)" if bad.sum() > 1 else ""
        raise DataError(f"{_where(name)}funding row {row} (timestamp {index[row]}), field "
                        f"'funding_rate' {problem}{more}")


def _time_text(index: pd.DatetimeIndex) -> str:
    """The latest time as text, or its raw count when Python's calendar cannot show it."""
    try:
        return str(index.max())
    except (ValueError, OverflowError, NotImplementedError):
        return f"{int(index.asi8.max())} {index.unit} after 1970"


def infer_funding_interval(index: pd.DatetimeIndex) -> str | None:
    """The most common step between funding times as ``"<hours>h"`` (None below 2 payments).

    Examples
    --------
    >>> infer_funding_interval(pd.date_range("2024-01-01", periods=4, freq="8h", tz="UTC"))
    '8h'
    """
    if len(index) < 2:
        return None
    steps = pd.Series(np.diff(index.as_unit("s").asi8)).mode()
    seconds = int(steps.iloc[0])
    if seconds % 3600 or 86400 % seconds:
        return None  # not a whole number of hours dividing a day: no grid to check against
    return f"{seconds // 3600}h"


def validate_funding(frame: pd.DataFrame, interval: str | None = None, *,
                     name: str | None = None) -> FundingSummary:
    """Check a canonical funding frame; report missing and off-grid payments, fill nothing.

    Parameters
    ----------
    frame : funding frame (index = funding times, column ``funding_rate``).
    interval : hours between payments (``"8h"``): every payment is then checked on that one
        grid. Default: the interval in force is found from the data (a run of 3 or more equal
        steps of 1, 2, 3, 4, 6 or 8 h settles it, so a venue's change of interval is reported
        in ``interval_changes``, not as gaps or off-grid payments); ``summary.interval`` is
        then ``attrs["funding_interval"]``, else the most common step, else 8h.
    name : what the frame is (a source string or file), put in front of every message.

    Raises
    ------
    DataError : naming the row (timestamp) and field that is wrong.

    Examples
    --------
    >>> times = pd.DatetimeIndex(["2024-01-01 00:00", "2024-01-01 08:00", "2024-01-02 00:00"],
    ...                          tz="UTC", name="timestamp")
    >>> summary = validate_funding(pd.DataFrame({"funding_rate": [1e-4, 2e-4, 1e-4]}, index=times))
    >>> summary.interval, summary.n_missing, str(summary.gaps["start"].iloc[0])
    ('8h', 1, '2024-01-01 16:00:00+00:00')
    """
    _check_funding_frame(frame, name)
    fixed = interval is not None
    interval = (interval or frame.attrs.get("funding_interval")
                or infer_funding_interval(frame.index) or _DEFAULT_INTERVAL)
    try:
        if not isinstance(interval, str):
            raise ParameterError(f"expected a string like '8h', got {interval!r}")
        dominant_ns = timeframe_to_seconds(interval) * 10**9
    except ParameterError as exc:
        raise DataError(f"{_where(name)}funding interval: {exc}") from None
    stamps = frame.index.as_unit("ns").asi8
    steps = np.diff(stamps)
    per_step, runs = ((np.full(len(steps), dominant_ns), []) if fixed
                      else _step_intervals(steps, dominant_ns))
    gaps = _gaps(stamps, per_step)
    first_interval = per_step[0] if len(per_step) else dominant_ns
    off_grid = int(stamps[0] % first_interval != 0) if len(stamps) else 0
    off_grid += int(np.count_nonzero(stamps[1:] % per_step)) if len(steps) else 0
    changes = [(frame.index[start], _hours(old), _hours(new))
               for (_, _, old), (start, _, new) in zip(runs, runs[1:], strict=False) if old != new]
    return FundingSummary(
        interval=interval, n_payments=len(frame),
        first=frame.index[0] if len(frame) else None, last=frame.index[-1] if len(frame) else None,
        gaps=gaps, n_missing=int(gaps["missing_payments"].sum()) if len(gaps) else 0,
        n_off_grid=off_grid, interval_changes=changes)


# Funding intervals a venue can settle into (hours dividing a day, at most Binance's 8 h); a run
# of this many equal steps between payments is a settled interval.
_SETTLED_HOURS = (1, 2, 3, 4, 6, 8)
_SETTLED_RUN = 3


def _hours(ns: int) -> str:
    return f"{int(ns) // (3600 * 10**9)}h"


def _step_intervals(steps: np.ndarray, dominant_ns: int) -> tuple[np.ndarray, list]:
    """The interval in force at each step between payments, and the settled runs found.

    A run of at least ``_SETTLED_RUN`` equal steps of a settled length is an interval in force
    from its first payment; every step takes the latest run starting at or before it (steps
    before the first run take the first run's). Without any run, the dominant interval holds.
    Missing payments only lengthen steps, so they never create a shorter interval; a market
    that lost every other payment for days shows as a change, reported, not hidden.
    """
    settled = {h * 3600 * 10**9 for h in _SETTLED_HOURS}
    runs: list[tuple[int, int, int]] = []  # (first step, end step, interval ns)
    start = 0
    for k in range(1, len(steps) + 1):
        if k == len(steps) or steps[k] != steps[start]:
            if k - start >= _SETTLED_RUN and int(steps[start]) in settled:
                runs.append((start, k, int(steps[start])))
            start = k
    per_step = np.full(len(steps), dominant_ns, dtype=np.int64)
    for i, (run_start, _, value) in enumerate(runs):
        per_step[0 if i == 0 else run_start:] = value
    return per_step, runs


def _gaps(stamps: np.ndarray, per_step: np.ndarray) -> pd.DataFrame:
    """Runs of empty grid slots strictly between consecutive payments, each step on the grid of
    the interval in force there (slots at multiples of it from midnight UTC). An off-grid
    payment fills no slot, so runs on both sides of one are a single run (as for candles)."""
    rows = []
    for k, interval in enumerate(per_step):
        first_slot = stamps[k] // interval + 1
        last_slot = (stamps[k + 1] - 1) // interval
        if last_slot < first_slot:
            continue
        start, end, count = first_slot * interval, last_slot * interval, last_slot - first_slot + 1
        if rows and start == rows[-1][1] + interval:  # only an off-grid payment between: one run
            rows[-1] = (rows[-1][0], end, rows[-1][2] + count)
        else:
            rows.append((start, end, count))
    return pd.DataFrame({
        "start": pd.to_datetime(np.array([r[0] for r in rows], dtype=np.int64), utc=True),
        "end": pd.to_datetime(np.array([r[1] for r in rows], dtype=np.int64), utc=True),
        "missing_payments": np.array([r[2] for r in rows], dtype=np.int64)})


@dataclass
class PerpData:
    """A perpetual swap's data: last-price candles, mark-price candles and funding payments.

    ``ohlcv`` and ``mark`` are canonical OHLCV frames on the same timeframe (the mark's volume is
    0 where the venue sends none); ``funding`` is a canonical funding frame covering the span of
    the candles. ``source`` is the source string they were loaded from.
    """

    ohlcv: pd.DataFrame
    mark: pd.DataFrame
    funding: pd.DataFrame
    source: str

    def validate(self) -> dict:
        """Summaries of the three series plus the mark's bars missing where candles exist.

        Returns ``{"ohlcv": ValidationSummary, "mark": ValidationSummary, "funding":
        FundingSummary, "mark_missing": DatetimeIndex}``; raises DataError on invalid data.
        """

        timeframe = self.ohlcv.attrs.get("timeframe")
        return {"ohlcv": validate_ohlcv(self.ohlcv, timeframe, name=f"{self.source} ohlcv"),
                "mark": validate_ohlcv(self.mark, timeframe, name=f"{self.source} mark"),
                "funding": validate_funding(self.funding, name=f"{self.source} funding"),
                "mark_missing": self.ohlcv.index.difference(self.mark.index)}


def _check_perp_source(parsed):
    """``parsed`` when it names a swap on a supported venue, else DataError saying why."""
    if parsed.kind != "exchange":
        raise DataError(f"data source {parsed.text!r}: perpetual-swap data needs 'sample[:...]' "
                        "or an exchange source like binanceusdm:BTC/USDT:USDT:1h:2024-01-01 "
                        "(a file holds no funding or mark series)")
    if parsed.exchange not in PERP_EXCHANGES:
        raise DataError(f"data source {parsed.text!r}: exchange {parsed.exchange!r} has no "
                        f"perpetual-swap loader; supported: {', '.join(PERP_EXCHANGES)}")
    if ":" not in parsed.symbol:
        raise DataError(f"data source {parsed.text!r}: symbol {parsed.symbol!r} is not a swap; "
                        "name its settle currency, e.g. BTC/USDT:USDT")
    return parsed


__all__ = ["FUNDING_COLUMNS", "PERP_EXCHANGES", "FundingSummary", "PerpData",
           "infer_funding_interval", "validate_funding"]
