"""Tearsheet numbers against empyrical and brute force, on a real BTC/USDT 1h file."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantlib.backtest.tearsheet_stats import (
    bar_returns,
    drawdown_table,
    monthly_returns,
    rolling_stats,
    var_cvar,
    yearly_returns,
)
from quantlib.errors import DataError, ParameterError
from tests.conftest import shared_data_path

empyrical = pytest.importorskip("empyrical", reason="empyrical-reloaded is a dev dependency "
                                "(pip install -e .[dev])")


@pytest.fixture(scope="module")
def btc_close() -> pd.Series:
    from quantlib.data import load_ohlcv

    return load_ohlcv(shared_data_path("btc_usdt_1h_2017_2020.csv"))["close"]


def test_monthly_and_yearly_returns_match_empyrical(btc_close):
    r = bar_returns(btc_close)
    ours = monthly_returns(r)
    theirs = empyrical.aggregate_returns(r, "monthly")
    assert len(theirs) == ours.notna().to_numpy().sum()
    for (year, month), value in theirs.items():
        assert ours.loc[year, month] == pytest.approx(value, rel=1e-9, abs=1e-12)
    years = yearly_returns(r)
    pd.testing.assert_series_equal(years, empyrical.aggregate_returns(r, "yearly"),
                                   check_names=False, check_index_type=False, rtol=1e-9)


@pytest.mark.parametrize("level", [0.95, 0.99])
def test_var_cvar_match_empyrical(btc_close, level):
    r = bar_returns(btc_close)
    var, cvar = var_cvar(r, level)
    assert var == pytest.approx(empyrical.value_at_risk(r, cutoff=1 - level), rel=1e-12)
    assert cvar == pytest.approx(empyrical.conditional_value_at_risk(r, cutoff=1 - level),
                                 rel=1e-12)
    assert cvar < var < 0


def _brute_force_periods(equity: np.ndarray) -> list[tuple[int, int, int | None, float]]:
    # Every (peak, valley, recovery, depth) by scanning each bar's distance from the best
    # value seen so far, written independently of drawdown_table's loop.
    periods, peak_i, valley_i = [], 0, None
    for i in range(1, len(equity)):
        if equity[i] >= equity[peak_i]:
            if valley_i is not None:
                periods.append((peak_i, valley_i, i, equity[valley_i] / equity[peak_i] - 1))
            peak_i, valley_i = i, None
        elif valley_i is None or equity[i] < equity[valley_i]:
            valley_i = i
    if valley_i is not None:
        periods.append((peak_i, valley_i, None, equity[valley_i] / equity[peak_i] - 1))
    return sorted(periods, key=lambda p: p[3])


def test_drawdown_table_on_real_prices(btc_close):
    table = drawdown_table(btc_close, top=5)
    r = bar_returns(btc_close)
    assert table.loc[0, "depth"] == pytest.approx(empyrical.max_drawdown(r), rel=1e-12)
    expected = _brute_force_periods(btc_close.to_numpy())[:5]
    idx = btc_close.index
    assert len(table) == 5
    for row, (peak, valley, recovery, depth) in zip(table.itertuples(), expected, strict=True):
        assert row.start == idx[peak] and row.valley == idx[valley]
        assert row.depth == pytest.approx(depth, rel=1e-12)
        if recovery is None:
            assert pd.isna(row.recovery) and np.isnan(row.bars_to_recover)
        else:
            assert row.recovery == idx[recovery]
            assert row.bars_to_recover == recovery - valley
    assert table["depth"].is_monotonic_increasing


def test_rolling_stats_match_empyrical(btc_close):
    r = bar_returns(btc_close).iloc[:3000]
    b = bar_returns(btc_close.iloc[::-1].reset_index(drop=True)).iloc[:3000]
    b.index = r.index  # an unrelated but aligned second series
    ours = rolling_stats(r, 200, 8760.0, benchmark_returns=b)
    assert ours.iloc[:199].isna().all().all()  # nothing before the window is full
    sharpe = empyrical.roll_sharpe_ratio(r, window=200, annualization=8760)
    vol = empyrical.roll_annual_volatility(r, window=200, annualization=8760)
    beta = empyrical.roll_beta(r, b, window=200)
    np.testing.assert_allclose(ours["sharpe"].iloc[199:].to_numpy(), np.asarray(sharpe),
                               rtol=1e-7)
    np.testing.assert_allclose(ours["volatility"].iloc[199:].to_numpy(), np.asarray(vol),
                               rtol=1e-7)
    np.testing.assert_allclose(ours["beta"].iloc[199:].to_numpy(), np.asarray(beta), rtol=1e-7)


def test_bad_input_is_named():
    idx = pd.date_range("2024-01-01", periods=3, freq="1h", tz="UTC")
    with pytest.raises(DataError, match="equity: non-finite value at 2024-01-01 01:00"):
        drawdown_table(pd.Series([1.0, np.nan, 2.0], index=idx))
    with pytest.raises(ParameterError, match="top: expected an integer >= 1"):
        drawdown_table(pd.Series([1.0, 2.0, 3.0], index=idx), top=0)
    with pytest.raises(ParameterError, match="level: expected a confidence level"):
        var_cvar(np.zeros(3), level=95)
    with pytest.raises(ParameterError, match="window: expected an integer >= 2"):
        rolling_stats(pd.Series([0.1, 0.2, 0.3], index=idx), 1, 8760.0)
