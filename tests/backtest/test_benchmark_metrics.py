"""Benchmark-relative metrics against empyrical (a second implementation) on real BTC bars."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantlib.backtest import run_backtest
from quantlib.backtest.metrics import BENCHMARK_METRIC_NAMES, compute_metrics, compute_metrics_frame
from quantlib.errors import DataError
from quantlib.optimize.sweep import objective_values
from tests.conftest import shared_data_path

empyrical = pytest.importorskip("empyrical", reason="empyrical-reloaded is a dev dependency "
                                "(pip install -e .[dev])")

HOURS_PER_YEAR = 365 * 24


@pytest.fixture(scope="module")
def btc_run():
    from quantlib.data import load_ohlcv

    data = load_ohlcv(shared_data_path("btc_usdt_1h_2022_2023.csv")).iloc[:6000]
    result = run_backtest("ma_cross", data, [{"fast": 10, "slow": 50}, {"fast": 24, "slow": 96}])
    return data, result


def _returns(result, combo: int, data: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    equity = result.equity[combo]
    prev = np.concatenate([[result.config.init_cash], equity.to_numpy()[:-1]])
    strategy = pd.Series(equity.to_numpy() / prev - 1.0, index=equity.index)
    close = data["close"].to_numpy()
    # Buy and hold from the first close: the first bar's return is 0, as the strategy's base.
    bench = pd.Series(np.concatenate([[0.0], close[1:] / close[:-1] - 1.0]), index=equity.index)
    return strategy, bench


@pytest.mark.parametrize("combo", [0, 1])
def test_relative_metrics_match_empyrical(btc_run, combo):
    data, result = btc_run
    m = result.metrics.loc[combo]
    r, b = _returns(result, combo, data)
    assert m["beta"] == pytest.approx(empyrical.beta(r, b), rel=1e-9)
    # empyrical compounds the per-bar intercept; ours multiplies it by the bars per year.
    assert (1 + m["alpha"] / HOURS_PER_YEAR) ** HOURS_PER_YEAR - 1 == pytest.approx(
        empyrical.alpha(r, b, annualization=HOURS_PER_YEAR), rel=1e-7)
    assert m["information_ratio"] == pytest.approx(
        empyrical.excess_sharpe(r, b) * np.sqrt(HOURS_PER_YEAR), rel=1e-7)
    assert m["correlation"] == pytest.approx(np.corrcoef(r, b)[0, 1], rel=1e-9)
    assert m["benchmark_sharpe"] == pytest.approx(
        empyrical.sharpe_ratio(b, annualization=HOURS_PER_YEAR), rel=1e-9)
    assert m["benchmark_max_drawdown"] == pytest.approx(empyrical.max_drawdown(b), rel=1e-9)
    close = data["close"]
    assert m["benchmark_return"] == pytest.approx(close.iloc[-1] / close.iloc[0] - 1, rel=1e-12)
    assert m["excess_return"] == pytest.approx(m["total_return"] - m["benchmark_return"])
    assert m["excess_sharpe"] == pytest.approx(m["sharpe"] - m["benchmark_sharpe"])
    up, down = b > 0, b < 0
    assert m["up_capture"] == pytest.approx(r[up].mean() / b[up].mean(), rel=1e-9)
    assert m["down_capture"] == pytest.approx(r[down].mean() / b[down].mean(), rel=1e-9)


def test_holding_the_benchmark_is_beta_one_zero_alpha(btc_run):
    data, _ = btc_run
    close = data["close"]
    equity = 5000.0 * close / close.iloc[0]
    m = compute_metrics(equity, benchmark=close, timeframe="1h")
    assert m["beta"] == pytest.approx(1.0, abs=1e-9)
    assert m["correlation"] == pytest.approx(1.0, abs=1e-9)
    assert m["alpha"] == pytest.approx(0.0, abs=1e-9)
    assert m["excess_return"] == pytest.approx(0.0, abs=1e-12)
    assert np.isnan(m["information_ratio"])  # zero tracking error: undefined, not huge


def test_source_string_benchmark_equals_the_loaded_series(btc_run):
    data, result = btc_run
    source = f"file:{shared_data_path('btc_usdt_1h_2022_2023.csv')}"
    equity = result.equity[[0]]
    from_string = compute_metrics_frame(equity, benchmark=source, init_cash=10_000.0)
    from_series = compute_metrics_frame(equity, benchmark=data["close"], init_cash=10_000.0)
    pd.testing.assert_frame_equal(from_string[list(BENCHMARK_METRIC_NAMES)],
                                  from_series[list(BENCHMARK_METRIC_NAMES)])
    assert from_series.loc[0, "beta"] == pytest.approx(result.metrics.loc[0, "beta"], rel=1e-12)


def test_portfolio_benchmark_is_equal_weight_buy_and_hold():
    from quantlib.data import load_ohlcv

    btc = load_ohlcv(shared_data_path("btc_usdt_1h_2022_2023.csv")).iloc[:3000]
    eth = load_ohlcv(shared_data_path("eth_usdt_1h_2022_2023.csv")).iloc[:3000]
    result = run_backtest("ma_cross", {"BTC/USDT": btc, "ETH/USDT": eth}, {"fast": 10, "slow": 50})
    common = btc.index.intersection(eth.index)
    growth = [df.loc[common, "close"] for df in (btc, eth)]
    expected = np.mean([g.iloc[-1] / g.iloc[0] for g in growth]) - 1.0
    assert result.metrics.loc[0, "benchmark_return"] == pytest.approx(expected, rel=1e-12)


def test_benchmark_must_cover_every_bar(btc_run):
    data, result = btc_run
    short = data["close"].iloc[10:]
    with pytest.raises(DataError, match=r"no value for 10 of the 6000 equity bars"):
        compute_metrics_frame(result.equity, benchmark=short)
    with pytest.raises(DataError, match="price at row 3"):
        compute_metrics_frame(result.equity, benchmark=np.r_[1.0, 1.0, 1.0, -1.0,
                                                             np.ones(len(data) - 4)])


def test_no_benchmark_gives_nan_not_zero():
    idx = pd.date_range("2024-01-01", periods=50, freq="1h", tz="UTC")
    m = compute_metrics(pd.Series(np.linspace(100, 120, 50), index=idx))
    assert all(np.isnan(m[name]) for name in BENCHMARK_METRIC_NAMES)


def test_optimizer_objectives_use_relative_metrics(btc_run):
    _, result = btc_run
    metrics = result.metrics
    pd.testing.assert_series_equal(objective_values(metrics, "excess_sharpe"),
                                   metrics["excess_sharpe"].astype(float))
    pd.testing.assert_series_equal(objective_values(metrics, "down_capture"),
                                   -metrics["down_capture"].astype(float))


def test_grid_engine_reports_buy_and_hold(btc_run):
    data, _ = btc_run
    result = run_backtest("grid", data, {"n_levels": 10})
    close = data["close"]
    assert result.metrics.loc[0, "benchmark_return"] == pytest.approx(
        close.iloc[-1] / close.iloc[0] - 1, rel=1e-12)
