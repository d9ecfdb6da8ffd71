"""THE performance metrics of quantlib: one implementation for reports, optimizers and live.

Definitions (``E`` = equity per bar, ``r_t = E_t / E_{t-1} - 1`` the bar returns, ``P`` =
periods per year = ``year_days * 86400 / bar_seconds``):

===================== ==================================================================
``total_return``      ``E_last / E_base - 1`` (``E_base`` = ``init_cash`` if given, else ``E_0``)
``cagr``              ``(1 + total_return) ** (1 / years) - 1``, ``years = n_returns / P``
``ann_volatility``    ``std(r, ddof=1) * sqrt(P)``
``sharpe``            ``mean(r) / std(r, ddof=1) * sqrt(P)`` (risk-free rate 0)
``sortino``           ``mean(r) / sqrt(mean(min(r, 0)**2)) * sqrt(P)``
``calmar``            ``cagr / |max_drawdown|``
``max_drawdown``      ``min(E / cummax(E) - 1)`` (a negative fraction, 0 if never under water)
``max_drawdown_bars`` longest run of bars spent below the previous equity peak
``max_drawdown_days`` the same in days (``bars * bar_seconds / 86400``)
``win_rate``          share of closed trades with pnl > 0
``profit_factor``     gross profit / gross loss (``inf`` with wins and no losses)
``expectancy``        mean pnl per trade, quote currency
``exposure``          share of bars with a non-zero position
``n_trades``          number of trades
``turnover``          total traded value / mean equity
``fees_paid``         total fees, quote currency
``final_equity``      ``E_last``
===================== ==================================================================

Benchmark-relative metrics (``B`` = the benchmark's value per bar, ``b_t`` its bar returns over
the same bars as ``r``; by default the buy-and-hold of the traded symbol(s), equal weight at the
first bar's close, never rebalanced; NaN when no benchmark is given):

========================== =============================================================
``benchmark_return``       ``B_last / B_first - 1``
``benchmark_cagr``         its CAGR over the same years as ``cagr``
``benchmark_sharpe``       ``mean(b) / std(b, ddof=1) * sqrt(P)``
``benchmark_max_drawdown`` ``min(B / cummax(B) - 1)``
``excess_return``          ``total_return - benchmark_return``
``excess_sharpe``          ``sharpe - benchmark_sharpe``
``beta``                   OLS slope of ``r`` on ``b``: ``cov(r, b) / var(b)``
``alpha``                  OLS intercept, annualised: ``(mean(r) - beta * mean(b)) * P``
``correlation``            Pearson correlation of ``r`` and ``b``
``information_ratio``      ``mean(r - b) / std(r - b, ddof=1) * sqrt(P)``
``up_capture``             ``mean(r | b > 0) / mean(b | b > 0)`` (arithmetic, per bar)
``down_capture``           ``mean(r | b < 0) / mean(b | b < 0)``
========================== =============================================================

Undefined values (no trades, zero volatility...) are NaN, never a silent zero.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from quantlib.backtest.benchmark import benchmark_values, relative_stats
from quantlib.backtest.metrics_nb import (
    K_DD_BARS,
    K_DOWNSIDE,
    K_MAX_DD,
    K_MEAN,
    K_MEAN_VALUE,
    K_STD,
    path_stats_nb,
)
from quantlib.core.timeframes import timeframe_to_seconds
from quantlib.errors import DataError, ParameterError

METRIC_NAMES: tuple[str, ...] = (
    "total_return", "cagr", "ann_volatility", "sharpe", "sortino", "calmar", "max_drawdown",
    "max_drawdown_bars", "max_drawdown_days", "win_rate", "profit_factor", "expectancy",
    "exposure", "n_trades", "turnover", "fees_paid", "final_equity",
    "benchmark_return", "benchmark_cagr", "benchmark_sharpe", "benchmark_max_drawdown",
    "excess_return", "excess_sharpe", "alpha", "beta", "correlation", "information_ratio",
    "up_capture", "down_capture",
)

# Benchmark-relative names (NaN when the metrics were computed without a benchmark).
BENCHMARK_METRIC_NAMES: tuple[str, ...] = METRIC_NAMES[METRIC_NAMES.index("benchmark_return"):]

# What a benchmark may be: prices or values per bar (one column, or several symbols held in
# equal weight), or a data source string loaded with quantlib.data.load.
BenchmarkLike = pd.Series | pd.DataFrame | np.ndarray | str

def timeframe_seconds(timeframe: str) -> float:
    """Seconds per bar of a ccxt-style timeframe (``"1m"``, ``"4h"``, ``"1d"``, ``"1w"``)."""
    return float(timeframe_to_seconds(timeframe))


def _bar_seconds(index: pd.Index, timeframe: str | None) -> float:
    if timeframe is not None:
        return timeframe_seconds(timeframe)
    if isinstance(index, pd.DatetimeIndex) and len(index) >= 2:
        step = float(pd.Series(index[1:] - index[:-1]).median().total_seconds())
        if step > 0:
            return step
    raise ParameterError(
        "timeframe: cannot infer the bar length (equity index is not a DatetimeIndex with at "
        "least 2 bars); pass timeframe='1h' or similar"
    )


def _pnl_stats(pnl: np.ndarray) -> tuple[float, float, float, float]:
    pnl = np.asarray(pnl, dtype=np.float64)
    pnl = pnl[np.isfinite(pnl)]
    n = len(pnl)
    if n == 0:
        return np.nan, np.nan, np.nan, 0.0
    gross_profit = pnl[pnl > 0].sum()
    gross_loss = -pnl[pnl < 0].sum()
    if gross_loss > 0:
        profit_factor = gross_profit / gross_loss
    else:
        profit_factor = np.inf if gross_profit > 0 else np.nan
    return float((pnl > 0).mean()), float(profit_factor), float(pnl.mean()), float(n)


def pnl_per_combo(combo: np.ndarray, pnl: np.ndarray, n_combo: int) -> list[np.ndarray]:
    """Closed-trade pnl split into one array per combination (``trade_pnl`` of
    :func:`compute_metrics_frame`); ``combo`` must be sorted.

    Examples
    --------
    >>> [a.tolist() for a in pnl_per_combo(np.array([0, 0, 2]), np.array([1.0, -2.0, 3.0]), 3)]
    [[1.0, -2.0], [], [3.0]]
    """
    return np.split(np.asarray(pnl), np.searchsorted(np.asarray(combo), np.arange(1, n_combo)))


def path_ratios(total_return: np.ndarray, n_rets: int, periods_per_year: float,
                mean: np.ndarray, std: np.ndarray, downside: np.ndarray,
                max_dd: np.ndarray) -> tuple[np.ndarray, ...]:
    """``(cagr, ann_volatility, sharpe, sortino, calmar)`` from the path statistics (module
    docstring definitions); shared by :func:`compute_metrics_frame` and the fused sweep."""
    n_cols = len(total_return)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        years = n_rets / periods_per_year
        cagr = np.where(
            (years > 0) & (total_return > -1), (1.0 + total_return) ** (1.0 / years) - 1.0, np.nan
        ) if n_rets else np.full(n_cols, np.nan)
        cagr = np.where(total_return <= -1, -1.0, cagr)
        ann_vol = std * np.sqrt(periods_per_year)
        sharpe = np.where(std > 0, mean / std * np.sqrt(periods_per_year), np.nan)
        sortino = np.where(
            downside > 0, mean / downside * np.sqrt(periods_per_year),
            np.where(mean > 0, np.inf, np.nan),
        )
        calmar = np.where(max_dd < 0, cagr / np.abs(max_dd), np.nan)
    return cagr, ann_vol, sharpe, sortino, calmar


def compute_metrics_frame(
    equity: pd.DataFrame,
    *,
    returns: pd.DataFrame | None = None,
    trade_pnl: Mapping[Any, np.ndarray] | Sequence[np.ndarray] | None = None,
    position: pd.DataFrame | np.ndarray | None = None,
    traded_value: float | Sequence[float] | np.ndarray = 0.0,
    fees_paid: float | Sequence[float] | np.ndarray = 0.0,
    timeframe: str | None = None,
    year_days: float = 365.0,
    init_cash: float | None = None,
    benchmark: BenchmarkLike | None = None,
) -> pd.DataFrame:
    """Metrics for every column of ``equity`` at once (one row per column).

    Parameters
    ----------
    equity : equity per bar, one column per combination (index = bar timestamps).
    returns : bar returns to use instead of ``equity.pct_change()`` (same shape).
    trade_pnl : per column, the pnl of each closed trade (mapping keyed by column, or a sequence
        in column order).
    position : position per bar (same shape), for ``exposure``; NaN exposure when omitted.
    traded_value, fees_paid : totals per column (scalar broadcasts).
    timeframe : bar timeframe; inferred from the index when omitted.
    year_days : days per year for annualisation.
    init_cash : starting cash before the first bar; when given it is the return base.
    benchmark : prices or values per bar (Series aligned by timestamp, array by row; several
        columns are held in equal weight), an OHLCV frame, or a data source string; see
        :func:`quantlib.backtest.benchmark.benchmark_values`. The backtest engines pass the
        traded symbols' closes (buy and hold). None: the benchmark metrics are NaN.

    Examples
    --------
    >>> idx = pd.date_range("2024-01-01", periods=3, freq="1D", tz="UTC")
    >>> m = compute_metrics_frame(pd.DataFrame({"a": [100.0, 110.0, 99.0]}, index=idx))
    >>> round(float(m.loc["a", "max_drawdown"]), 3)
    -0.1
    """
    if not isinstance(equity, pd.DataFrame):
        raise ParameterError(f"equity: expected a DataFrame, got {type(equity).__name__}")
    values = equity.to_numpy(dtype=np.float64)
    n_bars, n_cols = values.shape
    if n_bars == 0:
        raise DataError("equity: expected at least one bar, got an empty frame")
    if not np.all(np.isfinite(values)):
        row, col = np.argwhere(~np.isfinite(values))[0]
        raise DataError(f"equity: non-finite value at row {equity.index[row]}, column {equity.columns[col]!r}")
    if not (isinstance(year_days, int | float) and 0 < year_days <= 366):
        raise ParameterError(f"year_days: expected a number in (0, 366], got {year_days!r}")
    bar_seconds = _bar_seconds(equity.index, timeframe)
    periods_per_year = year_days * 86400.0 / bar_seconds

    if init_cash is not None:
        base = np.full(n_cols, float(init_cash))
        path = np.vstack([base, values])
    else:
        base = values[0]
        path = np.ascontiguousarray(values)
    if returns is not None:
        rets = np.ascontiguousarray(np.asarray(returns, dtype=np.float64).reshape(-1, n_cols))
        n_rets = rets.shape[0]
    else:
        rets = np.empty((0, n_cols))
        n_rets = path.shape[0] - 1
    stats = path_stats_nb(path, rets, returns is not None, 0 if init_cash is None else 1)
    mean, std, downside = stats[:, K_MEAN], stats[:, K_STD], stats[:, K_DOWNSIDE]
    max_dd, dd_bars = stats[:, K_MAX_DD], stats[:, K_DD_BARS]

    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        total_return = values[-1] / base - 1.0
    cagr, ann_vol, sharpe, sortino, calmar = path_ratios(
        total_return, n_rets, periods_per_year, mean, std, downside, max_dd)

    if trade_pnl is None:
        pnl_stats = np.full((n_cols, 4), np.nan)
    else:
        if isinstance(trade_pnl, Mapping):
            pnls = [trade_pnl.get(col, np.empty(0)) for col in equity.columns]
        else:
            pnls = list(trade_pnl)
            if len(pnls) != n_cols:
                raise ParameterError(
                    f"trade_pnl: expected {n_cols} arrays (one per equity column), got {len(pnls)}"
                )
        pnl_stats = np.array([_pnl_stats(p) for p in pnls], dtype=np.float64).reshape(n_cols, 4)

    if position is None:
        exposure = np.full(n_cols, np.nan)
    else:
        pos = np.asarray(position)
        pos = pos.reshape(n_bars, -1) if pos.ndim < 2 else pos
        if pos.shape != values.shape:
            raise ParameterError(f"position: expected shape {values.shape}, got {pos.shape}")
        held = pos if pos.dtype == np.bool_ else np.abs(pos.astype(np.float64, copy=False)) > 0
        exposure = held.mean(axis=0)

    relative = _benchmark_metrics(
        benchmark, equity.index, None if returns is None else rets, path, init_cash is not None,
        total_return, mean, std, periods_per_year, n_rets / periods_per_year, sharpe)
    traded = np.broadcast_to(np.asarray(traded_value, dtype=np.float64), (n_cols,))
    fees = np.broadcast_to(np.asarray(fees_paid, dtype=np.float64), (n_cols,))
    turnover = traded / stats[:, K_MEAN_VALUE]

    out = pd.DataFrame(
        {
            "total_return": total_return,
            "cagr": cagr,
            "ann_volatility": ann_vol,
            "sharpe": sharpe,
            "sortino": sortino,
            "calmar": calmar,
            "max_drawdown": max_dd,
            "max_drawdown_bars": dd_bars,
            "max_drawdown_days": dd_bars * bar_seconds / 86400.0,
            "win_rate": pnl_stats[:, 0],
            "profit_factor": pnl_stats[:, 1],
            "expectancy": pnl_stats[:, 2],
            "exposure": exposure,
            "n_trades": pnl_stats[:, 3],
            "turnover": turnover,
            "fees_paid": fees,
            "final_equity": values[-1],
            **relative,
        },
        index=equity.columns,
    )
    return out[list(METRIC_NAMES)]


def _benchmark_metrics(benchmark: BenchmarkLike | None, index: pd.Index, rets: np.ndarray | None,
                       path: np.ndarray, has_cash_row: bool, total_return: np.ndarray,
                       mean: np.ndarray, std: np.ndarray, periods_per_year: float, years: float,
                       sharpe: np.ndarray) -> dict[str, np.ndarray]:
    n_cols = path.shape[1]
    if benchmark is None:
        return {name: np.full(n_cols, np.nan) for name in BENCHMARK_METRIC_NAMES}
    values = benchmark_values(benchmark, index)
    # Same return base as the equity: with starting cash the first bar's return is measured
    # against it, and holding from the first bar's close that return is 0.
    bench_path = np.concatenate([values[:1], values]) if has_cash_row else values
    n_rets = path.shape[0] - 1 if rets is None else rets.shape[0]
    bench_rets = np.diff(bench_path) / bench_path[:-1]
    if len(bench_rets) < n_rets:
        raise ParameterError(f"benchmark: {len(bench_rets)} bar returns for {n_rets} equity "
                             f"returns")
    bench_rets = bench_rets[len(bench_rets) - n_rets:]
    b = path_stats_nb(np.ascontiguousarray(bench_path[:, None]), np.empty((0, 1)), False, 0)[0]
    bench_total = values[-1] / values[0] - 1.0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        bench_cagr = (1.0 + bench_total) ** (1.0 / years) - 1.0 if years > 0 else np.nan
        bench_sharpe = (bench_rets.mean() / bench_rets.std(ddof=1) * np.sqrt(periods_per_year)
                        if n_rets > 1 and bench_rets.std() > 0 else np.nan)
    stats = relative_stats(rets, path, bench_rets, mean, std, periods_per_year)
    full = np.full(n_cols, 1.0)
    return {
        "benchmark_return": full * bench_total,
        "benchmark_cagr": full * bench_cagr,
        "benchmark_sharpe": full * bench_sharpe,
        "benchmark_max_drawdown": full * b[K_MAX_DD],
        "excess_return": total_return - bench_total,
        "excess_sharpe": sharpe - bench_sharpe,
        **stats,
    }


def compute_metrics(
    equity: pd.Series,
    *,
    returns: pd.Series | None = None,
    trade_pnl: np.ndarray | Sequence[float] | None = None,
    position: pd.Series | np.ndarray | None = None,
    traded_value: float = 0.0,
    fees_paid: float = 0.0,
    timeframe: str | None = None,
    year_days: float = 365.0,
    init_cash: float | None = None,
    benchmark: BenchmarkLike | None = None,
) -> dict[str, float]:
    """Metrics of one equity curve (see the module docstring for every definition).

    Examples
    --------
    >>> idx = pd.date_range("2024-01-01", periods=4, freq="1h", tz="UTC")
    >>> m = compute_metrics(pd.Series([100.0, 90.0, 95.0, 100.0], index=idx), trade_pnl=[5, -2])
    >>> round(m["max_drawdown"], 6), m["max_drawdown_bars"], m["win_rate"], m["profit_factor"]
    (-0.1, 2.0, 0.5, 2.5)
    """
    if isinstance(equity, pd.DataFrame):
        raise ParameterError("equity: expected a Series; use compute_metrics_frame for frames")
    if not isinstance(equity, pd.Series):
        raise ParameterError(f"equity: expected a pandas Series, got {type(equity).__name__}")
    frame = equity.to_frame("equity")
    row = compute_metrics_frame(
        frame,
        returns=None if returns is None else np.asarray(returns, dtype=np.float64).reshape(-1, 1),
        trade_pnl=None if trade_pnl is None else [np.asarray(trade_pnl, dtype=np.float64)],
        position=None if position is None else np.asarray(position, dtype=np.float64).reshape(-1, 1),
        traded_value=traded_value,
        fees_paid=fees_paid,
        timeframe=timeframe,
        year_days=year_days,
        init_cash=init_cash,
        benchmark=benchmark,
    ).iloc[0]
    return {name: float(row[name]) for name in METRIC_NAMES}


__all__ = ["compute_metrics", "compute_metrics_frame", "METRIC_NAMES", "BENCHMARK_METRIC_NAMES",
           "pnl_per_combo",
           "timeframe_seconds"]
