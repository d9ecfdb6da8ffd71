"""Per-regime attribution of any backtest: where did the returns, risk and trades happen?"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from quantlib.data.timeframes import bars_per_year, infer_timeframe
from quantlib.errors import DataError, ParameterError


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
