"""Per-regime attribution of any backtest: where did the returns, risk and trades happen?

Also the regime-filtered grid against the plain grid it wraps, side by side
(:func:`compare_regime_grid`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from quantlib.backtest import METRIC_NAMES, run_backtest
from quantlib.backtest.grid import run_wrapped_grid  # the grid backtest: pandas results
from quantlib.core.registry import get_kind
from quantlib.core.timeframes import bars_per_year
from quantlib.data.timeframes import infer_timeframe
from quantlib.errors import DataError, ParameterError

if TYPE_CHECKING:
    from quantlib.backtest import BacktestConfig, BacktestResult


def regime_attribution(result: Any, regimes: pd.Series, combo: int = 0,
                       timeframe: str | None = None, year_days: float | None = None) -> pd.DataFrame:
    """Return, Sharpe, time in regime and trades per regime for one backtest combination.

    Bar ``t``'s return ``E_t / E_{t-1} - 1`` is attributed to the regime label of bar ``t``
    (the regime the bar's price move happened in). Bars without a label (NaN, e.g. before a
    walk-forward's first fit) are reported under ``"unlabelled"`` only if present.

    Columns: ``bars``, ``time_share``, ``total_return`` (compounded over the regime's bars),
    ``mean_return`` (per bar), ``ann_volatility``, ``sharpe`` (``mean / std(ddof=1) *
    sqrt(bars per year)``, the :mod:`quantlib.backtest.metrics` definition), ``n_fills`` and
    ``n_trades`` (round trips entered in the regime).

    Examples
    --------
    >>> from quantlib.backtest import run_backtest
    >>> from quantlib.data import synthetic_ohlcv
    >>> m = synthetic_ohlcv(500, seed=1)
    >>> res = run_backtest("ma_cross", m.ohlcv, {"fast": 5, "slow": 20})
    >>> table = regime_attribution(res, m.regimes)
    >>> bool(abs(table["time_share"].sum() - 1) < 1e-12)
    True
    """
    if combo not in range(result.equity.shape[1]):
        raise ParameterError(f"combo: expected 0..{result.equity.shape[1] - 1}, got {combo!r}")
    equity = result.equity.iloc[:, combo]
    if not isinstance(regimes, pd.Series):
        raise DataError("regimes: expected a pandas Series indexed like the backtest's equity")
    missing = equity.index.difference(regimes.index)
    if len(missing):
        raise DataError(f"regimes: no label for {len(missing)} bar(s) of the backtest, first "
                        f"{missing[0]}; pass a Series covering the equity index")
    labels = regimes.reindex(equity.index)
    bar_return = equity.pct_change()
    tf = timeframe or getattr(result.config, "timeframe", None) or infer_timeframe(equity.index)
    if tf is None:
        raise ParameterError("timeframe: cannot infer the bar length; pass timeframe='1h'")
    days = year_days if year_days is not None else getattr(result.config, "year_days", 365.0)
    periods = bars_per_year(tf, days)
    key = labels.map(lambda v: "unlabelled" if pd.isna(v) else int(v))
    fills = result.fills[result.fills["combo"] == combo]
    fill_regime = key.reindex(pd.DatetimeIndex(fills["time"])).to_numpy()
    trades = result.trades[result.trades["combo"] == combo]
    entry_col = "entry_time" if "entry_time" in trades.columns else None
    trade_regime = (key.reindex(pd.DatetimeIndex(trades[entry_col])).to_numpy()
                    if entry_col else np.array([]))
    rows = {}
    for regime in sorted(key.unique(), key=lambda v: (isinstance(v, str), v)):
        in_regime = (key == regime).to_numpy()
        r = bar_return[in_regime].dropna()
        std = r.std(ddof=1) if len(r) > 1 else np.nan
        rows[regime] = {
            "bars": int(in_regime.sum()),
            "time_share": float(in_regime.mean()),
            "total_return": float(np.prod(1.0 + r.to_numpy()) - 1.0),
            "mean_return": float(r.mean()) if len(r) else np.nan,
            "ann_volatility": float(std * np.sqrt(periods)) if len(r) > 1 else np.nan,
            "sharpe": float(r.mean() / std * np.sqrt(periods)) if std and std > 0 else np.nan,
            "n_fills": int((fill_regime == regime).sum()),
            "n_trades": int((trade_regime == regime).sum()),
        }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "regime"
    return table


COMPARISON_METRICS: tuple[str, ...] = ("total_return", "sharpe", "max_drawdown", "n_trades",
                                       "fees_paid")
FILTERED_LABEL, PLAIN_LABEL = "regime-filtered grid", "plain grid"


@dataclass
class RegimeGridComparison:
    """Outcome of :func:`compare_regime_grid`.

    Attributes
    ----------
    filtered : BacktestResult of the ``regime_grid`` parameters.
    plain : BacktestResult of the ``grid`` kind with the same grid parameters (no regime mask).
    metrics : DataFrame, one row per metric name, columns ``"regime-filtered grid"`` and
        ``"plain grid"``.
    attribution : :func:`regime_attribution` of each, stacked: index (strategy label, regime).
    """

    filtered: BacktestResult
    plain: BacktestResult
    metrics: pd.DataFrame
    attribution: pd.DataFrame


def compare_regime_grid(data: pd.DataFrame, params: Mapping[str, Any], regimes: pd.Series,
                        config: BacktestConfig | Mapping[str, Any] | None = None,
                        metrics: Sequence[str] = COMPARISON_METRICS) -> RegimeGridComparison:
    """Backtest a ``regime_grid`` and its plain ``grid`` on ``data``; compare metrics by regime.

    The plain grid runs ``params["inner_params"]``, so both strategies trade the same levels
    and differ only in the regime mask.

    Parameters
    ----------
    data : canonical OHLCV frame (typically the held-out part).
    params : ``regime_grid`` parameters, e.g. from
        :func:`quantlib.core.regime_kinds.regime_filter_params` with ``inner_kind="grid"``.
    regimes : regime label per bar for the attribution (e.g. a model's filtered ``predict``);
        bars of ``data`` without a label are attributed to ``"unlabelled"``.
    config : :class:`~quantlib.backtest.BacktestConfig` (or dict) used by both backtests.
    metrics : metric names (columns of ``BacktestResult.metrics``) in the comparison table.

    Examples
    --------
    >>> from quantlib.data import synthetic_ohlcv
    >>> m = synthetic_ohlcv(600, seed=1)
    >>> params = {"inner_params": {"n_levels": 6}, "vol_window": 10, "filter_window": 20}
    >>> cmp = compare_regime_grid(m.ohlcv, params, m.regimes)
    >>> list(cmp.metrics.columns)
    ['regime-filtered grid', 'plain grid']
    """
    if not isinstance(params, Mapping):
        raise ParameterError(f"params: expected one regime_grid parameter dict, got "
                             f"{type(params).__name__}")
    if not isinstance(regimes, pd.Series):
        raise DataError("regimes: expected a pandas Series of regime labels indexed by bar time")
    names = list(metrics)
    unknown = [name for name in names if name not in METRIC_NAMES]
    if unknown or not names:
        got = f"unknown name(s) {unknown!r}" if unknown else "no names"
        raise ParameterError(f"metrics: expected metric names from {METRIC_NAMES}, got {got}")
    filtered = run_regime_grid(data, params, config)
    plain = run_backtest("grid", data, filtered.params[0]["inner_params"], config)
    table = pd.concat({FILTERED_LABEL: filtered.metrics.iloc[0],
                       PLAIN_LABEL: plain.metrics.iloc[0]}, axis=1).loc[names]
    labels = regimes.reindex(data.index)
    attribution = pd.concat({FILTERED_LABEL: regime_attribution(filtered, labels),
                             PLAIN_LABEL: regime_attribution(plain, labels)})
    return RegimeGridComparison(filtered=filtered, plain=plain, metrics=table,
                                attribution=attribution)


def run_regime_grid(data: pd.DataFrame, params: Mapping[str, Any] | Sequence[Mapping[str, Any]],
                    config: Any = None):
    """Backtest ``regime_grid`` parameter dict(s): the grid engine with the regime mask
    (the same as ``run_backtest("regime_grid", ...)``).

    Examples
    --------
    >>> from quantlib.data import load
    >>> res = run_regime_grid(load("sample:bars=300"), {"vol_window": 10, "filter_window": 20})
    >>> res.kind
    'regime_grid'
    """
    params_list = [params] if isinstance(params, Mapping) else list(params)
    return run_wrapped_grid(get_kind("regime_grid"), data, params_list, config)
