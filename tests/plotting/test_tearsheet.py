"""The tearsheet draws the numbers of tearsheet_stats and the metrics, nothing of its own."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantlib.backtest import run_backtest
from quantlib.backtest.tearsheet_stats import bar_returns, drawdown_table, var_cvar
from quantlib.data import load
from quantlib.errors import ParameterError
from quantlib.plotting import tearsheet
from quantlib.plotting.tearsheet import CHART_NAMES, decimate


@pytest.fixture(scope="module")
def sheet_and_result():
    df = load("sample:seed=4,bars=3000")
    result = run_backtest("ma_cross", df, [{"fast": 10, "slow": 50}, {"fast": 5, "slow": 20}])
    return tearsheet(result, 1, benchmark=df, max_points=500), result, df


def test_every_chart_has_data(sheet_and_result):
    sheet, _, _ = sheet_and_result
    assert list(sheet.figures) == list(CHART_NAMES)
    for name, fig in sheet.figures.items():
        assert fig.layout.meta == {"tearsheet": name}
        assert any(len(getattr(t, "x", None) if getattr(t, "x", None) is not None else [])
                   or getattr(t, "z", None) is not None or getattr(t, "cells", None) is not None
                   for t in fig.data), name


def test_cumulative_ends_at_the_total_returns(sheet_and_result):
    sheet, result, df = sheet_and_result
    strategy, hold = sheet.figures["cumulative"].data
    assert strategy.y[-1] == pytest.approx(100 * result.metrics.loc[1, "total_return"], rel=1e-9)
    close = df["close"]
    assert hold.y[-1] == pytest.approx(100 * (close.iloc[-1] / close.iloc[0] - 1), rel=1e-9)
    assert len(strategy.x) <= 500  # decimated for display


def test_drawdown_table_and_var_are_the_stats_modules(sheet_and_result):
    sheet, result, _ = sheet_and_result
    equity = result.equity[1]
    pd.testing.assert_frame_equal(sheet.drawdowns, drawdown_table(equity, top=5))
    cells = sheet.figures["drawdowns"].data[0].cells.values
    assert list(cells[4]) == [f"{100 * d:.1f} %" for d in sheet.drawdowns["depth"]]
    var, cvar = var_cvar(bar_returns(equity, result.config.init_cash), 0.95)
    assert (sheet.var, sheet.cvar) == (var, cvar)
    lines = [s.x0 for s in sheet.figures["distribution"].layout.shapes]
    assert lines == pytest.approx([100 * var, 100 * cvar])
    # the deepest drawdown on the underwater chart equals the max_drawdown metric
    assert min(sheet.figures["underwater"].data[0].y) == pytest.approx(
        100 * result.metrics.loc[1, "max_drawdown"], rel=1e-9)


def test_trades_and_exposure(sheet_and_result):
    sheet, result, df = sheet_and_result
    closed = result.trades[(result.trades["combo"] == 1) & result.trades["closed"]]
    pnl_hist, duration_hist = sheet.figures["trades"].data
    np.testing.assert_allclose(pnl_hist.x, closed["pnl"].to_numpy())
    exposure = sheet.figures["exposure"].data[0].y / 100
    held_value = result.positions[1] * df["close"] / result.equity[1]
    assert exposure.max() == pytest.approx(held_value.max(), rel=1e-9)


def test_decimate_keeps_extremes_and_ends():
    s = pd.Series(np.random.default_rng(0).normal(size=50_000).cumsum())
    d = decimate(s, 900)
    assert len(d) <= 900 and d.index.is_monotonic_increasing
    assert d.min() == s.min() and d.max() == s.max() and d.index[-1] == s.index[-1]
    assert decimate(s.iloc[:100], 900) is not None and len(decimate(s.iloc[:100], 900)) == 100


def test_bad_combo_is_named(sheet_and_result):
    _, result, _ = sheet_and_result
    with pytest.raises(ParameterError, match=r"combo: expected 0..1, got 5"):
        tearsheet(result, 5)
