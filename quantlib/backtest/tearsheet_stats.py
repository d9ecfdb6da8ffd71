"""The numbers behind a tearsheet: drawdown periods, calendar returns, tail risk, rolling stats.

Plotting code (:mod:`quantlib.plotting.tearsheet`) only draws what these functions return, so
each number a reader sees is computed (and tested) here. Every function takes an equity or
return Series indexed by bar timestamps.

Definitions
-----------
- drawdown: ``E / cummax(E) - 1``; a drawdown period starts at the last peak before the equity
  goes under water, its valley is the lowest point, and it recovers at the first bar back at
  (or above) the peak (NaT: not recovered by the last bar).
- monthly / yearly return: the compounded bar returns of the calendar month / year (UTC),
  ``prod(1 + r) - 1``.
- historical VaR at ``level`` (0.95): the ``1 - level`` percentile of the bar returns (linear
  interpolation); CVaR: the mean of the ``floor((n - 1) * (1 - level)) + 1`` worst returns.
- rolling Sharpe / volatility / beta: over the last ``window`` bar returns, annualised with
  ``periods_per_year``; NaN until ``window`` returns exist (no lookahead).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from quantlib.errors import DataError, ParameterError

DRAWDOWN_COLUMNS: tuple[str, ...] = ("start", "valley", "recovery", "depth", "bars_to_valley",
                                     "bars_to_recover", "days")


def _checked_series(values: pd.Series, name: str) -> pd.Series:
    if not isinstance(values, pd.Series):
        raise ParameterError(f"{name}: expected a pandas Series, got {type(values).__name__}")
    if len(values) == 0:
        raise DataError(f"{name}: expected at least one bar, got an empty series")
    if not np.all(np.isfinite(values.to_numpy(dtype=np.float64))):
        bad = values.index[~np.isfinite(values.to_numpy(dtype=np.float64))][0]
        raise DataError(f"{name}: non-finite value at {bad}")
    return values.astype(np.float64)


def bar_returns(equity: pd.Series, init_cash: float | None = None) -> pd.Series:
    """Bar returns of ``equity`` (the first against ``init_cash`` when given, as in the metrics).

    Examples
    --------
    >>> idx = pd.date_range("2024-01-01", periods=3, freq="1h", tz="UTC")
    >>> bar_returns(pd.Series([110.0, 99.0, 99.0], index=idx), 100.0).round(3).tolist()
    [0.1, -0.1, 0.0]
    """
    equity = _checked_series(equity, "equity")
    values = equity.to_numpy()
    prev = np.concatenate([[init_cash], values[:-1]]) if init_cash is not None else values[:-1]
    index = equity.index if init_cash is not None else equity.index[1:]
    return pd.Series(values[-len(prev):] / prev - 1.0, index=index, name="return")


def underwater(equity: pd.Series) -> pd.Series:
    """Drawdown per bar, ``E / cummax(E) - 1`` (0 at a new high, negative under water)."""
    equity = _checked_series(equity, "equity")
    return (equity / equity.cummax() - 1.0).rename("drawdown")


def drawdown_table(equity: pd.Series, top: int = 5) -> pd.DataFrame:
    """The ``top`` deepest drawdown periods, deepest first.

    Columns: ``start`` (last peak), ``valley``, ``recovery`` (NaT if still under water),
    ``depth`` (negative fraction), ``bars_to_valley``, ``bars_to_recover`` (NaN if not
    recovered) and ``days`` (start to recovery, or to the last bar).

    Examples
    --------
    >>> idx = pd.date_range("2024-01-01", periods=6, freq="1D", tz="UTC")
    >>> t = drawdown_table(pd.Series([100.0, 80, 100, 90, 95, 99], index=idx))
    >>> t["depth"].round(2).tolist(), t["bars_to_recover"].tolist()
    ([-0.2, -0.1], [1.0, nan])
    """
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ParameterError(f"top: expected an integer >= 1, got {top!r}")
    dd = underwater(equity).to_numpy()
    index = equity.index
    rows = []
    i, n = 0, len(dd)
    while i < n:
        if dd[i] >= 0:
            i += 1
            continue
        start = i - 1  # the peak bar (the first bar is never under water)
        end = i
        while end < n and dd[end] < 0:
            end += 1
        valley = i + int(np.argmin(dd[i:end]))
        recovered = end < n
        last = end if recovered else n - 1
        rows.append({
            "start": index[start], "valley": index[valley],
            "recovery": index[end] if recovered else pd.NaT,
            "depth": float(dd[valley]), "bars_to_valley": float(valley - start),
            "bars_to_recover": float(end - valley) if recovered else np.nan,
            "days": (index[last] - index[start]).total_seconds() / 86400.0,
        })
        i = end
    table = pd.DataFrame(rows, columns=list(DRAWDOWN_COLUMNS))
    return table.sort_values("depth", kind="stable").head(top).reset_index(drop=True)


def _compounded(returns: pd.Series, freq: str) -> pd.Series:
    returns = _checked_series(returns, "returns")
    if not isinstance(returns.index, pd.DatetimeIndex):
        raise ParameterError("returns: expected a DatetimeIndex to group by calendar period")
    growth = np.log1p(returns).groupby(returns.index.to_period(freq) if returns.index.tz is None
                                       else returns.index.tz_convert("UTC").tz_localize(None)
                                       .to_period(freq)).sum()
    return np.expm1(growth)


def monthly_returns(returns: pd.Series) -> pd.DataFrame:
    """Compounded return of each calendar month: rows = years, columns = months 1..12 (NaN where
    the data has no bar).

    Examples
    --------
    >>> idx = pd.to_datetime(["2024-01-31", "2024-02-01", "2024-02-02"], utc=True)
    >>> monthly_returns(pd.Series([0.1, 0.1, -0.5], index=idx)).loc[2024, [1, 2]].round(3).tolist()
    [0.1, -0.45]
    """
    by_month = _compounded(returns, "M")
    table = pd.DataFrame({"year": by_month.index.year, "month": by_month.index.month,
                          "ret": by_month.to_numpy()})
    return table.pivot(index="year", columns="month", values="ret").reindex(
        columns=range(1, 13))


def yearly_returns(returns: pd.Series) -> pd.Series:
    """Compounded return of each calendar year (index = year)."""
    by_year = _compounded(returns, "Y")
    return pd.Series(by_year.to_numpy(), index=by_year.index.year, name="return")


def var_cvar(returns: pd.Series | np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """Historical value at risk and conditional value at risk of bar returns (module docstring).

    Examples
    --------
    >>> [round(v, 4) for v in var_cvar(np.arange(-10, 10) / 100, level=0.9)]
    [-0.081, -0.095]
    """
    if not (isinstance(level, float) and 0.5 <= level < 1):
        raise ParameterError(f"level: expected a confidence level in [0.5, 1) such as 0.95, "
                             f"got {level!r}")
    values = np.asarray(returns, dtype=np.float64)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return np.nan, np.nan
    tail = 1.0 - level
    k = int((len(values) - 1) * tail)
    return float(np.percentile(values, 100 * tail)), float(np.partition(values, k)[:k + 1].mean())


def rolling_stats(returns: pd.Series, window: int, periods_per_year: float,
                  benchmark_returns: pd.Series | None = None) -> pd.DataFrame:
    """Rolling annualised Sharpe and volatility (and beta on ``benchmark_returns``) over the last
    ``window`` bar returns; NaN until the window is full."""
    returns = _checked_series(returns, "returns")
    if isinstance(window, bool) or not isinstance(window, int) or window < 2:
        raise ParameterError(f"window: expected an integer >= 2 bars, got {window!r}")
    roll = returns.rolling(window, min_periods=window)
    mean, std = roll.mean(), roll.std(ddof=1)
    out = pd.DataFrame({
        "sharpe": (mean / std.where(std > 0)) * np.sqrt(periods_per_year),
        "volatility": std * np.sqrt(periods_per_year),
    })
    if benchmark_returns is not None:
        bench = _checked_series(benchmark_returns, "benchmark_returns").reindex(returns.index)
        cov = returns.rolling(window, min_periods=window).cov(bench)
        var = bench.rolling(window, min_periods=window).var(ddof=1)
        out["beta"] = cov / var.where(var > 0)
    return out


def exposure_series(position: pd.Series, equity: pd.Series,
                    prices: pd.Series | None = None) -> pd.Series:
    """Exposure per bar: held value / equity when ``prices`` are given (``position`` in base
    units), else 1.0 while a position is held and 0.0 when flat."""
    position = _checked_series(position, "position")
    if prices is None:
        return (position.abs() > 0).astype(np.float64).rename("exposure")
    prices = _checked_series(prices, "prices").reindex(position.index)
    if prices.isna().any():
        raise DataError(f"prices: no price for {int(prices.isna().sum())} of the {len(position)} "
                        f"position bars")
    return (position * prices / equity.reindex(position.index)).rename("exposure")


def trade_stats(trades: pd.DataFrame, combo: int = 0) -> pd.DataFrame:
    """P&L and duration (hours, entry to exit) of the closed trades of ``combo``."""
    missing = [c for c in ("combo", "pnl", "entry_time", "exit_time") if c not in trades.columns]
    if missing:
        raise ParameterError(f"trades: missing column(s) {missing}")
    own = trades[trades["combo"] == combo]
    if "closed" in own.columns:
        own = own[own["closed"].astype(bool)]
    hours = (own["exit_time"] - own["entry_time"]).dt.total_seconds() / 3600.0
    return pd.DataFrame({"pnl": own["pnl"].to_numpy(dtype=np.float64),
                         "duration_hours": hours.to_numpy(dtype=np.float64)})


__all__ = ["exposure_series", "trade_stats", "bar_returns", "underwater", "drawdown_table", "monthly_returns", "yearly_returns",
           "var_cvar", "rolling_stats", "DRAWDOWN_COLUMNS"]
