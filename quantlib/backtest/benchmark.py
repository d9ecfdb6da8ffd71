"""Benchmarks for the shared metrics: what "buy and hold" means, and the relative statistics.

The definitions are listed in :mod:`quantlib.backtest.metrics` (the one metrics function calls
:func:`relative_stats`); this module turns whatever the user gave as a benchmark into one value
per bar, and computes alpha, beta, correlation, information ratio and capture ratios for every
equity column at once with matrix-vector products (a sweep chunk costs one extra pass).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from quantlib.data import load
from quantlib.errors import DataError, ParameterError


def buy_and_hold(prices: pd.DataFrame | pd.Series | np.ndarray, init_cash: float = 1.0) -> np.ndarray:
    """Value per bar of ``init_cash`` split equally over the columns of ``prices`` at the first
    bar and held (never rebalanced).

    Examples
    --------
    >>> buy_and_hold(np.array([[10.0, 1.0], [20.0, 1.0]]), 100.0).tolist()
    [100.0, 150.0]
    """
    values = np.asarray(prices, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2 or values.shape[0] == 0 or values.shape[1] == 0:
        raise DataError(f"benchmark: expected prices per bar (1 or 2 dimensions), got shape "
                        f"{values.shape}")
    bad = np.argwhere(~np.isfinite(values) | (values <= 0))
    if len(bad):
        row, col = bad[0]
        raise DataError(f"benchmark: price at row {row}, column {col} is {values[row, col]!r}; "
                        f"expected a finite positive price")
    return init_cash * (values / values[0]).mean(axis=1)


def _aligned(series: pd.Series | pd.DataFrame, index: pd.Index, what: str) -> np.ndarray:
    if isinstance(series.index, pd.DatetimeIndex) and isinstance(index, pd.DatetimeIndex):
        aligned = series.reindex(index)
        missing = aligned.isna().to_numpy().reshape(len(index), -1).any(axis=1)
        if missing.any():
            raise DataError(f"benchmark {what}: no value for {int(missing.sum())} of the "
                            f"{len(index)} equity bars (first: {index[np.argmax(missing)]}); "
                            f"the benchmark must cover every bar")
        return aligned.to_numpy(dtype=np.float64)
    if len(series) != len(index):
        raise DataError(f"benchmark {what}: {len(series)} rows but the equity has {len(index)} "
                        f"bars (give a series indexed by timestamp to align it)")
    return series.to_numpy(dtype=np.float64)


def benchmark_values(benchmark: object, index: pd.Index) -> np.ndarray:
    """The benchmark's value per bar of ``index`` (1-D float array, starts at 1).

    ``benchmark`` is a Series of prices or values, a DataFrame or 2-D array of several symbols'
    prices (held in equal weight), an OHLCV frame (its ``close``), or a data source string
    (``"file:PATH"``, ``"sample:seed=1"``, ``"kraken:BTC/USD:1h"``) loaded with
    :func:`quantlib.data.load` and aligned on ``index`` by timestamp.

    Examples
    --------
    >>> idx = pd.date_range("2024-01-01", periods=3, freq="1h", tz="UTC")
    >>> benchmark_values(pd.Series([2.0, 3.0, 1.0], index=idx), idx).tolist()
    [1.0, 1.5, 0.5]
    """
    what = ""
    if isinstance(benchmark, str):
        what = repr(benchmark)
        benchmark = load(benchmark)
    if isinstance(benchmark, pd.DataFrame) and "close" in benchmark.columns:
        benchmark = benchmark["close"]
    if isinstance(benchmark, pd.Series | pd.DataFrame):
        prices = _aligned(benchmark, index, what)
    elif isinstance(benchmark, np.ndarray | list | tuple):
        prices = np.asarray(benchmark, dtype=np.float64)
        if prices.shape[0] != len(index):
            raise DataError(f"benchmark: {prices.shape[0]} rows but the equity has {len(index)} "
                            f"bars")
    else:
        raise ParameterError(f"benchmark: expected a Series, DataFrame, array or data source "
                             f"string, got {type(benchmark).__name__}")
    return buy_and_hold(prices)


def relative_stats(rets: np.ndarray | None, path: np.ndarray, bench: np.ndarray,
                   mean: np.ndarray, std: np.ndarray,
                   periods_per_year: float) -> dict[str, np.ndarray]:
    """Alpha, beta, correlation, information ratio and capture ratios of every column.

    ``rets`` are the columns' bar returns (None: taken from ``path``, the equity path the
    metrics use), ``bench`` the benchmark's bar returns over the same bars, ``mean``/``std`` the
    columns' return mean and sample std (already computed by the path kernel).
    """
    if rets is None:
        rets = path[1:] / path[:-1]
        rets -= 1.0
    n = rets.shape[0]
    if n < 2:
        return undefined_relative(rets.shape[1])
    centred = bench - bench.mean()
    up, down = bench > 0, bench < 0
    # cov(r, b) = sum(r * (b - mean_b)) / (n - 1): centring b alone is enough. One pass reads
    # the returns matrix once for the covariance and the up/down sums together (einsum: BLAS
    # on this thin (n x 3)' (n x k) product was 10-30x slower here, threads fighting).
    sums = np.einsum("ij,ik->jk", np.column_stack([centred, up, down]), rets)
    return relative_from_moments(mean, std, sums[0] / (n - 1), sums[1], sums[2], bench, n,
                                 periods_per_year)


def undefined_relative(n_cols: int) -> dict[str, np.ndarray]:
    """The benchmark-relative statistics of fewer than two bars: NaN for every column."""
    nan = np.full(n_cols, np.nan)
    return dict(alpha=nan, beta=nan, correlation=nan, information_ratio=nan,
                up_capture=nan, down_capture=nan)


def relative_from_moments(mean: np.ndarray, std: np.ndarray, cov: np.ndarray,
                          up_sum: np.ndarray, down_sum: np.ndarray, bench: np.ndarray, n: int,
                          periods_per_year: float) -> dict[str, np.ndarray]:
    """Alpha, beta, correlation, information ratio and capture ratios from each column's
    moments: return mean and sample std, covariance with the benchmark, and its returns summed
    over the ``n`` benchmark returns ``bench`` that are up (> 0) and down (< 0).

    The definitions every path shares (:func:`relative_stats` on equity columns, the fused
    sweeps on their kernels' sums), so that both give the same numbers.
    """
    nan = np.full(np.shape(cov), np.nan)
    mean_b = bench.mean()
    centred = bench - mean_b
    var_b = centred @ centred / (n - 1)
    up, down = bench > 0, bench < 0
    with np.errstate(divide="ignore", invalid="ignore"):
        beta = cov / var_b if var_b > 0 else nan
        alpha = (mean - beta * mean_b) * periods_per_year
        correlation = cov / (std * np.sqrt(var_b))
        tracking_var = std**2 + var_b - 2.0 * cov
        # The difference of two variances cancels when the strategy is the benchmark: below
        # rounding level the tracking error is zero and the ratio undefined.
        tracked = tracking_var > 1e-12 * (std**2 + var_b)
        information_ratio = np.where(
            tracked, (mean - mean_b) / np.sqrt(np.where(tracked, tracking_var, 1.0))
            * np.sqrt(periods_per_year), np.nan)
        up_capture = (up_sum / up.sum()) / bench[up].mean() if up.any() else nan
        down_capture = (down_sum / down.sum()) / bench[down].mean() if down.any() else nan
    return dict(alpha=alpha, beta=beta, correlation=correlation,
                information_ratio=information_ratio, up_capture=up_capture,
                down_capture=down_capture)


__all__ = ["buy_and_hold", "benchmark_values", "relative_from_moments", "relative_stats",
           "undefined_relative"]
