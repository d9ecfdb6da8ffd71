"""What the fused-kernel tests share: random bars and the comparisons against ``run_backtest``.

The fused sweeps (one symbol, multi-timeframe, shared-cash portfolios) are each checked against
``run_backtest`` the same way: every metric to a relative 1e-9 (NaN where it is NaN), and the
return moments DSR and PBO use recomputed from ``run_backtest``'s equity curve.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from quantlib.backtest import run_backtest
from quantlib.core import get_kind
from quantlib.optimize.stats import ReturnMoments

RTOL = 1e-9

# Parameter sets per built-in signal kind, two each (sweeps add their own where they need more).
KIND_PARAMS = {
    "ma_cross": [{"fast": 3, "slow": 12}, {"fast": 5, "slow": 30}],
    "ema_cross": [{"fast": 3, "slow": 10}, {"fast": 6, "slow": 21}],
    "rsi_reversion": [{"window": 5, "lower": 35.0, "upper": 65.0},
                      {"window": 14, "lower": 45.0, "upper": 55.0}],
    "bollinger_reversion": [{"window": 10, "k": 0.5}, {"window": 20, "k": 1.25}],
    "donchian_breakout": [{"window": 5}, {"window": 24}],
    "macd": [{"fast": 4, "slow": 10, "signal": 3}, {"fast": 12, "slow": 26, "signal": 9}],
}


def random_bars(seed: int, n: int, flat_share: float, level: float = 100.0,
                symbol: str = "TEST/USDT") -> pd.DataFrame:
    """A random walk with flat stretches and wide bar ranges, hourly from 2024-01-01.

    Flat stretches (equal closes) make indicator ties; wide ranges make stops fire inside bars
    and on gaps at the open.

    Parameters
    ----------
    seed, n : int
        Random seed and number of bars.
    flat_share : float
        Share of bars whose close does not move.
    level : float, default 100.0
        First close (a portfolio mixes price scales).
    symbol : str, default "TEST/USDT"
        ``attrs["symbol"]``.

    Returns
    -------
    pandas.DataFrame
        A canonical OHLCV frame.
    """
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0, 0.01, n) * (rng.random(n) > flat_share)
    close = level * np.exp(np.cumsum(steps))
    open_ = np.r_[close[0], close[:-1]] * np.exp(rng.normal(0.0, 0.004, n))
    high = np.maximum(open_, close) * (1.0 + rng.exponential(0.006, n))
    low = np.minimum(open_, close) * (1.0 - rng.exponential(0.006, n))
    index = pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC", name="timestamp")
    df = pd.DataFrame({"open": open_, "high": high, "low": low, "close": close,
                       "volume": rng.uniform(1.0, 10.0, n)}, index=index)
    df.attrs.update(source="synthetic", timeframe="1h", symbol=symbol)
    return df


def assert_metrics_agree(got: pd.DataFrame, reference: pd.DataFrame, where: str,
                         names: Sequence[str]) -> None:
    """``got`` has exactly the columns ``names``, each equal to ``reference``'s to RTOL."""
    ref = reference.reset_index(drop=True)
    assert list(got.columns) == list(names)
    for name in names:
        g, w = got[name].to_numpy(), ref[name].to_numpy(dtype=np.float64)
        same = (g == w) | (np.isnan(g) & np.isnan(w)) | np.isclose(g, w, rtol=RTOL, atol=0.0)
        assert same.all(), f"{where}: {name} fused {g[~same]} != run_backtest {w[~same]}"


def assert_moments_agree(moments: ReturnMoments, result, n_splits: int, where: str) -> None:
    """``moments`` equal those recomputed from ``result``'s equity (a BacktestResult)."""
    values = result.equity.to_numpy()
    prev = np.vstack([np.full((1, values.shape[1]), result.config.init_cash), values[:-1]])
    ref = ReturnMoments.from_returns(values / prev - 1.0, n_splits)
    np.testing.assert_array_equal(moments.n_obs, ref.n_obs)
    np.testing.assert_array_equal(moments.block_n, ref.block_n)
    for name in ("sharpe", "skew", "kurtosis", "block_sum", "block_sumsq"):
        np.testing.assert_allclose(getattr(moments, name), getattr(ref, name), rtol=1e-8,
                                   atol=1e-12, err_msg=f"{where}: {name}")


def check_fused(evaluate, names: Sequence[str], kind: str, data, params: list[dict],
                config: dict, n_splits: int, where: str) -> None:
    """A fused ``evaluate`` (``fused_evaluate`` or ``portfolio_evaluate``) gives ``names``
    metrics and return moments equal to ``run_backtest``'s for the same request."""
    metrics, moments = evaluate(get_kind(kind), data, params, config, n_splits)
    result = run_backtest(kind, data, params, config)
    assert_metrics_agree(metrics, result.metrics, where, names)
    assert_moments_agree(moments, result, n_splits, where)
