"""Every metric against a hand-worked 6-bar example (plain-Python arithmetic, not numpy)."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pandas as pd
import pytest

from quantlib.backtest.metrics import METRIC_NAMES, compute_metrics, compute_metrics_frame
from quantlib.errors import DataError, ParameterError

EQUITY = [100.0, 110.0, 99.0, 104.5, 120.0, 108.0]
PNL = [10.0, -4.0, 6.0, 0.0, -2.0]
POSITION = [0, 1, 1, 0, -1, 0]


def _equity(freq: str = "1D") -> pd.Series:
    idx = pd.date_range("2024-01-01", periods=len(EQUITY), freq=freq, tz="UTC")
    return pd.Series(EQUITY, index=idx)


@pytest.fixture
def metrics() -> dict[str, float]:
    return compute_metrics(_equity(), trade_pnl=PNL, position=POSITION, traded_value=500.0,
                           fees_paid=1.5)


def test_return_metrics_by_hand(metrics):
    rets = [EQUITY[i] / EQUITY[i - 1] - 1 for i in range(1, 6)]
    # 0.1, -0.1, 0.0555.., 0.148325.., -0.1
    assert metrics["total_return"] == pytest.approx(0.08)
    years = 5 / 365  # five daily intervals in a 365-day year
    assert metrics["cagr"] == pytest.approx(1.08 ** (1 / years) - 1)
    assert metrics["ann_volatility"] == pytest.approx(statistics.stdev(rets) * math.sqrt(365))
    assert metrics["sharpe"] == pytest.approx(
        statistics.mean(rets) / statistics.stdev(rets) * math.sqrt(365))
    downside = math.sqrt(sum(min(r, 0.0) ** 2 for r in rets) / 5)
    assert metrics["sortino"] == pytest.approx(statistics.mean(rets) / downside * math.sqrt(365))
    assert metrics["final_equity"] == 108.0


def test_drawdown_by_hand(metrics):
    # peaks 100,110,110,110,120,120 -> drawdowns 0,0,-10%,-5%,0,-10%
    assert metrics["max_drawdown"] == pytest.approx(-0.1)
    # under water on bars 2-3 (2 bars) and bar 5 (1 bar): the longest run is 2 bars = 2 days
    assert metrics["max_drawdown_bars"] == 2
    assert metrics["max_drawdown_days"] == pytest.approx(2.0)
    assert metrics["calmar"] == pytest.approx(metrics["cagr"] / 0.1)


def test_trade_metrics_by_hand(metrics):
    assert metrics["n_trades"] == 5
    assert metrics["win_rate"] == pytest.approx(2 / 5)        # 10 and 6 win; 0 is not a win
    assert metrics["profit_factor"] == pytest.approx(16 / 6)  # (10+6) / (4+2)
    assert metrics["expectancy"] == pytest.approx(2.0)        # 10/5
    assert metrics["exposure"] == pytest.approx(3 / 6)        # non-zero on bars 1, 2, 4
    assert metrics["turnover"] == pytest.approx(500 / (641.5 / 6))
    assert metrics["fees_paid"] == 1.5
    assert set(metrics) == set(METRIC_NAMES)


def test_annualisation_follows_timeframe_and_year_days():
    hourly = compute_metrics(_equity("1h"))
    rets = [EQUITY[i] / EQUITY[i - 1] - 1 for i in range(1, 6)]
    assert hourly["sharpe"] == pytest.approx(
        statistics.mean(rets) / statistics.stdev(rets) * math.sqrt(365 * 24))
    assert hourly["max_drawdown_days"] == pytest.approx(2 / 24)
    equities = compute_metrics(_equity(), year_days=252)
    assert equities["ann_volatility"] == pytest.approx(statistics.stdev(rets) * math.sqrt(252))
    assert equities["cagr"] == pytest.approx(1.08 ** (252 / 5) - 1)
    explicit = compute_metrics(pd.Series(EQUITY), timeframe="1d")
    assert explicit["sharpe"] == pytest.approx(compute_metrics(_equity())["sharpe"])


def test_init_cash_is_the_return_base():
    m = compute_metrics(_equity(), init_cash=90.0)
    assert m["total_return"] == pytest.approx(108 / 90 - 1)
    assert m["cagr"] == pytest.approx((108 / 90) ** (365 / 6) - 1)  # six intervals from 90


def test_sharpe_and_sortino_agree_with_vectorbt():
    pytest.importorskip("vectorbt")
    rng = np.random.default_rng(3)
    idx = pd.date_range("2024-01-01", periods=300, freq="1h", tz="UTC")
    equity = pd.Series(1000 * np.cumprod(1 + rng.normal(0.0005, 0.01, 300)), index=idx)
    m = compute_metrics(equity)
    rets = equity.pct_change().iloc[1:]
    acc = rets.vbt.returns(freq="1h", year_freq="365D")
    assert m["sharpe"] == pytest.approx(acc.sharpe_ratio(), rel=1e-9)
    assert m["sortino"] == pytest.approx(acc.sortino_ratio(), rel=1e-9)
    assert m["max_drawdown"] == pytest.approx(equity.vbt.drawdown().min(), rel=1e-9)


def test_undefined_metrics_are_nan_not_zero():
    flat = compute_metrics(pd.Series([100.0] * 5, index=_equity().index[:5]), trade_pnl=[])
    assert math.isnan(flat["sharpe"]) and math.isnan(flat["calmar"])
    assert math.isnan(flat["win_rate"]) and flat["n_trades"] == 0
    only_wins = compute_metrics(_equity(), trade_pnl=[1.0, 2.0])
    assert only_wins["profit_factor"] == math.inf


def test_frame_version_matches_single():
    eq = _equity()
    frame = pd.DataFrame({"a": eq, "b": eq[::-1].to_numpy()}, index=eq.index)
    table = compute_metrics_frame(frame, trade_pnl={"a": PNL}, traded_value=[500.0, 0.0])
    single = compute_metrics(frame["b"], trade_pnl=[])
    assert table.loc["a", "profit_factor"] == pytest.approx(16 / 6)
    for name in ("total_return", "sharpe", "max_drawdown", "max_drawdown_bars"):
        assert table.loc["b", name] == pytest.approx(single[name])


def test_bad_input_is_a_clear_error():
    with pytest.raises(DataError, match="non-finite value at row"):
        compute_metrics(pd.Series([1.0, np.nan, 2.0], index=_equity().index[:3]))
    with pytest.raises(ParameterError, match="timeframe"):
        compute_metrics(pd.Series([1.0, 2.0, 3.0]))
    with pytest.raises(ParameterError, match="year_days"):
        compute_metrics(_equity(), year_days=0)


def test_one_pass_kernel_equals_full_matrix_numpy():
    # The numba kernel against the textbook full-matrix formulas, on random equity paths with
    # flat stretches, new peaks and deep drawdowns; with and without the starting cash.
    rng = np.random.default_rng(5)
    values = 100 * np.cumprod(1 + rng.normal(0, 0.02, (400, 7)) * (rng.random((400, 7)) > 0.2), axis=0)
    idx = pd.date_range("2024-01-01", periods=400, freq="1h", tz="UTC")
    equity = pd.DataFrame(values, index=idx)
    for init in (None, 90.0):
        path = values if init is None else np.vstack([np.full(7, init), values])
        rets = path[1:] / path[:-1] - 1
        peak = np.maximum.accumulate(path, axis=0)
        at_peak = np.where(path >= peak, np.arange(len(path))[:, None], 0)
        dd_bars = (np.arange(len(path))[:, None] - np.maximum.accumulate(at_peak, axis=0)).max(0)
        ppy = 365 * 24
        m = compute_metrics_frame(equity, timeframe="1h", init_cash=init)
        np.testing.assert_allclose(m["sharpe"], rets.mean(0) / rets.std(0, ddof=1) * np.sqrt(ppy),
                                   rtol=1e-10)
        np.testing.assert_allclose(m["sortino"], rets.mean(0) / np.sqrt((np.minimum(rets, 0) ** 2)
                                                                         .mean(0)) * np.sqrt(ppy),
                                   rtol=1e-10)
        np.testing.assert_allclose(m["max_drawdown"], (path / peak - 1).min(0), rtol=1e-12)
        np.testing.assert_array_equal(m["max_drawdown_bars"], dd_bars)
        np.testing.assert_allclose(m["turnover"], 0.0)  # no traded value given
    explicit = compute_metrics_frame(equity, returns=equity.pct_change().fillna(0.0), timeframe="1h")
    r = equity.pct_change().fillna(0.0).to_numpy()
    np.testing.assert_allclose(explicit["ann_volatility"], r.std(0, ddof=1) * np.sqrt(365 * 24),
                               rtol=1e-10)
