"""Benchmark-relative metrics on the fused path (``quantlib.optimize.fused_portfolio``).

Two independent references: ``run_backtest``'s metrics (vectorbt's fills, then
``compute_metrics_frame`` with the buy-and-hold benchmark through ``quantlib.backtest.benchmark``)
to a relative 1e-9, and the definitions of ``quantlib/backtest/metrics.py`` recomputed here in
plain numpy from ``run_backtest``'s equity (OLS slope and intercept by ``np.polyfit``, Pearson
correlation by ``np.corrcoef``, the information ratio from the active returns ``r - b``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantlib.backtest import run_backtest
from quantlib.backtest.metrics import BENCHMARK_METRIC_NAMES, METRIC_NAMES
from quantlib.core import get_kind
from quantlib.optimize.fused_portfolio import portfolio_evaluate
from quantlib.optimize.sweep import sweep

RTOL = 1e-9


def _bars(seed: int, n: int, drift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(drift, 0.01, n)))
    open_ = np.r_[close[0], close[:-1]] * np.exp(rng.normal(0.0, 0.003, n))
    high = np.maximum(open_, close) * (1.0 + rng.exponential(0.005, n))
    low = np.minimum(open_, close) * (1.0 - rng.exponential(0.005, n))
    index = pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC", name="timestamp")
    df = pd.DataFrame({"open": open_, "high": high, "low": low, "close": close,
                       "volume": 1.0}, index=index)
    df.attrs.update(source="synthetic", timeframe="1h", symbol=f"B{seed}/USDT")
    return df


def _assert_close(got: np.ndarray, want: np.ndarray, rtol: float, where: str) -> None:
    got, want = np.asarray(got, float), np.asarray(want, float)
    same = (got == want) | (np.isnan(got) & np.isnan(want)) | np.isclose(got, want, rtol=rtol,
                                                                          atol=0.0)
    assert same.all(), f"{where}: fused {got[~same]} != reference {want[~same]}"


def _plain_numpy(result, closes: np.ndarray) -> dict[str, np.ndarray]:
    """The metrics module's definitions, from the equity and closes alone."""
    values = result.equity.to_numpy()
    init = result.config.init_cash
    r = values / np.vstack([np.full((1, values.shape[1]), init), values[:-1]]) - 1.0
    held = (closes / closes[0]).mean(axis=1)  # equal weight at the first close, never rebalanced
    b = np.r_[0.0, held[1:] / held[:-1] - 1.0]
    periods = 365 * 24.0
    out: dict[str, list[float]] = {k: [] for k in ("beta", "alpha", "correlation",
                                                   "information_ratio", "excess_return",
                                                   "up_capture", "down_capture")}
    for col in r.T:
        slope, intercept = np.polyfit(b, col, 1)
        active = col - b
        out["beta"].append(slope)
        out["alpha"].append(intercept * periods)
        out["correlation"].append(np.corrcoef(col, b)[0, 1])
        out["information_ratio"].append(active.mean() / active.std(ddof=1) * np.sqrt(periods))
        out["excess_return"].append(values[-1, len(out["beta"]) - 1] / init - held[-1])
        out["up_capture"].append(col[b > 0].mean() / b[b > 0].mean())
        out["down_capture"].append(col[b < 0].mean() / b[b < 0].mean())
    return {k: np.array(v) for k, v in out.items()}


CASES = [
    ("ma_cross", [{"fast": 3, "slow": 12}, {"fast": 8, "slow": 40}], {}),
    ("rsi_reversion", [{"window": 7, "lower": 40.0, "upper": 60.0}],
     {"direction": "both", "size_type": "value", "size": 3000.0, "fees": 0.001}),
    ("donchian_breakout", [{"window": 10}, {"window": 30}],
     {"direction": "shortonly", "sl_stop": 0.02, "fees": 0.0005}),
    ("macd", [{"fast": 6, "slow": 20, "signal": 5}], {"tp_stop": 0.015, "trail_stop": 0.01}),
]


@pytest.mark.parametrize("kind,params,config", CASES, ids=[c[0] for c in CASES])
def test_single_symbol_benchmark_metrics_equal_the_benchmark_module(kind, params, config):
    data = _bars(7, 700, 0.0005)
    metrics, _ = portfolio_evaluate(get_kind(kind), data, params, config, 4)
    result = run_backtest(kind, data, params, config)
    ref = result.metrics.reset_index(drop=True)
    for name in METRIC_NAMES:
        _assert_close(metrics[name], ref[name], RTOL, f"{kind} {name}")
    plain = _plain_numpy(result, data[["close"]].to_numpy())
    for name, want in plain.items():
        _assert_close(metrics[name], want, 1e-7, f"{kind} {name} (plain numpy)")


def test_real_btc_eth_sol_portfolio_benchmark_is_the_equal_weight_hold(shared_data):
    data = {s: shared_data(f"{s.lower()}_usdt_1h_2022_2023.csv").iloc[:2500]
            for s in ("BTC", "ETH", "SOL")}
    params = [{"fast": 12, "slow": 48}, {"fast": 24, "slow": 96}]
    config = {"size": 0.3, "fees": 0.001, "sl_stop": 0.03}
    metrics, _ = portfolio_evaluate(get_kind("ema_cross"), data, params, config, 8)
    result = run_backtest("ema_cross", data, params, config)
    for name in BENCHMARK_METRIC_NAMES:
        _assert_close(metrics[name], result.metrics[name].to_numpy(), RTOL, name)
    closes = np.column_stack([df["close"].to_numpy() for df in result_frames(result, data)])
    by_hand = np.mean(closes[-1] / closes[0]) - 1.0
    assert metrics["benchmark_return"].iloc[0] == pytest.approx(by_hand, rel=1e-12)
    plain = _plain_numpy(result, closes)
    for name, want in plain.items():
        _assert_close(metrics[name], want, 1e-7, f"{name} (plain numpy)")


def result_frames(result, data: dict[str, pd.DataFrame]) -> list[pd.DataFrame]:
    """The symbols' frames on the equity's bars (run_backtest aligns them on common bars)."""
    return [data[s].loc[result.equity.index] for s in result.extras["symbols"]]


@pytest.mark.parametrize("objective", ["excess_sharpe", "information_ratio", "alpha"])
def test_a_benchmark_objective_sweeps_fused_and_matches_the_vectorbt_sweep(objective):
    data = _bars(13, 800, 0.0003)
    space = {"fast": [3, 5, 8], "slow": [20, 40]}
    fused = sweep("ma_cross", data, space, progress=False, n_splits=4, objective=objective)
    slow = sweep("ma_cross", data, space, progress=False, n_splits=4, objective=objective,
                 engine="vectorbt")
    assert fused.engine == "fused" and slow.engine.startswith("vectorbt")
    for name in METRIC_NAMES:
        _assert_close(fused.table[name], slow.table[name], RTOL, f"sweep {name}")
    assert fused.best_params == slow.best_params
    assert fused.dsr == pytest.approx(slow.dsr, rel=1e-8)


def test_evaluate_chunk_with_benchmark_holds_every_metric():
    """The chunk function dask workers run: ``benchmark=True`` on one frame gives the fused
    rows every metric (the sweep passes it for a benchmark-relative objective)."""
    from quantlib.optimize.sweep import evaluate_chunk

    data = _bars(17, 500)
    params = [{"fast": 4, "slow": 15}, {"fast": 9, "slow": 30}]
    plain, _ = evaluate_chunk("ma_cross", data, params, None, 4, True)
    rich, _ = evaluate_chunk("ma_cross", data, params, None, 4, True, benchmark=True)
    assert "alpha" not in plain.columns
    ref = run_backtest("ma_cross", data, params).metrics.reset_index(drop=True)
    for name in METRIC_NAMES:
        _assert_close(rich[name], ref[name], RTOL, f"evaluate_chunk {name}")
