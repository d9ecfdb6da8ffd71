"""Backtest figures carry the right numbers (not just 'a figure was made')."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantlib.backtest import BacktestConfig, run_backtest
from quantlib.errors import ParameterError
from quantlib.plotting.backtest import plot_equity, plot_param_heatmap, plot_trades


@pytest.fixture(scope="module")
def sweep(ohlcv):
    grid = [{"fast": f, "slow": s} for f in (3, 6) for s in (20, 40, 60)]
    return run_backtest("ma_cross", ohlcv, grid, BacktestConfig(fees=0.0005))


def test_equity_and_drawdown_traces(sweep, ohlcv):
    fig = plot_equity(sweep, [0, 4], benchmark=ohlcv["close"])
    eq_trace, dd_trace = fig.data[2], fig.data[3]  # combo 4
    equity = sweep.equity[4].to_numpy()
    peak = np.maximum.accumulate(equity)
    np.testing.assert_allclose(eq_trace.y, equity)
    np.testing.assert_allclose(dd_trace.y, 100 * (equity / peak - 1))
    assert fig.data[-1].y[0] == pytest.approx(sweep.config.init_cash)
    with pytest.raises(ParameterError, match="combo: 9 is out of range"):
        plot_equity(sweep, 9)


def test_trades_markers_are_the_fills(sweep, ohlcv):
    fig = plot_trades(sweep, ohlcv, combo=2)
    fills = sweep.fills_of(2)
    buys, sells = fig.data[1], fig.data[2]
    assert len(buys.x) == (fills["side"] == 1).sum() and len(sells.x) == (fills["side"] == -1).sum()
    np.testing.assert_allclose(buys.y, fills.loc[fills["side"] == 1, "price"])


def test_heatmap_is_the_pivot_of_the_metric(sweep):
    fig = plot_param_heatmap(sweep, "fast", "slow", "total_return")
    z = np.asarray(fig.data[0].z, dtype=float)
    table = sweep.table()
    for i, slow in enumerate((20, 40, 60)):
        for j, fast in enumerate((3, 6)):
            row = table[(table["fast"] == fast) & (table["slow"] == slow)]
            assert z[i, j] == pytest.approx(row["total_return"].iloc[0])
    with pytest.raises(ParameterError, match="metric 'nope'"):
        plot_param_heatmap(sweep, "fast", "slow", "nope")
    agg = plot_param_heatmap(pd.DataFrame({"a": [1, 1], "b": [2, 2], "m": [1.0, 3.0]}), "a", "b",
                             "m", agg="mean")
    assert agg.data[0].z.tolist() == [[2.0]]
