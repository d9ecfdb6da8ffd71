"""htf_trend and informative kinds: independent pandas targets, bias checks, backtests, leaks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import pytest

from quantlib.backtest import run_backtest
from quantlib.backtest.bias import check_lookahead, check_recursive
from quantlib.core import get_kind
from quantlib.core.bars import Bars
from quantlib.core.informative import InformativeInput, informative
from quantlib.core.kinds import ema_length
from quantlib.core.registry import StrategyKind
from quantlib.data import load
from quantlib.errors import DataError

INNER = {"fast": 5, "slow": 20}


def _params(trend_kind: str = "ma", window: int = 6) -> dict[str, Any]:
    return {"inner_kind": "ma_cross", "inner_params": INNER, "trend_timeframe": "4h",
            "trend_kind": trend_kind, "trend_window": window}


def _finite_ema(x: np.ndarray, span: int) -> np.ndarray:
    """Truncated, renormalised EMA written out as a weighted sum (the kinds' definition)."""
    alpha, length = 2.0 / (span + 1.0), ema_length(span)
    weights = (1 - alpha) ** np.arange(length)
    out = np.full(len(x), np.nan)
    for t in range(length - 1, len(x)):
        out[t] = np.dot(weights, x[t - length + 1: t + 1][::-1]) / weights.sum()
    return out


def _expected_targets(data: pd.DataFrame, p: Mapping[str, Any]) -> np.ndarray:
    """pandas: resample to 4h, average, direction, merge_asof on closed-bar times, gate."""
    four = data.resample("4h", origin="epoch").agg({"close": "last", "open": "count"})
    four = four[four["open"] == 4]  # whole periods only
    close = four["close"].to_numpy()
    if p["trend_kind"] == "ma":
        average = pd.Series(close).rolling(p["trend_window"]).mean().to_numpy()
    else:
        average = _finite_ema(close, p["trend_window"])
    direction = np.sign(close - average)
    right = pd.DataFrame({"closed": four.index + pd.Timedelta("4h"), "direction": direction})
    left = pd.DataFrame({"closed": data.index + pd.Timedelta("1h")})
    seen = pd.merge_asof(left, right, on="closed")["direction"].fillna(0).to_numpy()
    inner = get_kind("ma_cross").signals(data, INNER)
    return np.where(np.sign(inner) == seen, inner, 0.0)


@pytest.fixture(scope="module")
def hourly() -> pd.DataFrame:
    return load("sample:bars=900,timeframe=1h,seed=3")


@pytest.mark.parametrize("trend_kind", ["ma", "ema"])
def test_htf_trend_targets_match_an_independent_pandas_computation(hourly, trend_kind):
    p = _params(trend_kind)
    target = get_kind("htf_trend").signals(hourly, p)
    np.testing.assert_array_equal(target, _expected_targets(hourly, p))
    inner = get_kind("ma_cross").signals(hourly, INNER)
    assert 0 < np.count_nonzero(target) < np.count_nonzero(inner)  # the filter filters


@pytest.mark.parametrize("trend_kind", ["ma", "ema"])
def test_htf_trend_passes_both_bias_checks(hourly, trend_kind):
    p = _params(trend_kind, 5)
    assert check_lookahead("htf_trend", hourly, p, n_checks=40).passed
    result = check_recursive("htf_trend", hourly, p, n_checks=12, extra_history=(0, 1, 5))
    assert result.passed, result.details


def test_htf_trend_warmup_counts_the_higher_timeframe_history():
    kind = get_kind("htf_trend")
    p = kind.validate(_params("ma", 6))
    assert kind.warmup_bars(p, "1h") == (6 + 1) * 4 - 2
    p = kind.validate(_params("ema", 6))
    assert kind.warmup_bars(p, "1h") == (ema_length(6) + 1) * 4 - 2
    assert kind.warmup_bars(kind.validate({**_params(), "trend_timeframe": "1h"}), "1h") == 19


def _leaky_signal(bars: Bars, p: Mapping[str, Any]) -> np.ndarray:
    # reads the 4h bar AFTER the visible one: the still-forming bar at the base bar's close
    trend = informative(bars, "trend")
    if not len(trend.bars):
        return np.zeros(len(bars))
    ahead = np.minimum(trend.index + 1, len(trend.bars) - 1)
    up = np.where(trend.index >= 0, trend.bars.close[ahead] > trend.bars.open[ahead], False)
    return up.astype(float)


LEAKY = StrategyKind("leaky_4h", params=(), signal=_leaky_signal, inputs="bars",
                     informative=lambda p: (InformativeInput("trend", "4h"),))


def test_check_lookahead_catches_a_kind_reading_the_forming_4h_bar(hourly):
    result = check_lookahead(LEAKY, hourly, {}, n_checks=80)
    assert not result.passed
    assert "uses later bars" in result.details


def _btc_gate(bars: Bars, p: Mapping[str, Any]) -> np.ndarray:
    btc = informative(bars, "btc")
    up = (btc.bars.close > btc.bars.open).astype(float)
    return np.nan_to_num(btc.at_base(up))


CROSS = StrategyKind("eth_when_btc_up", params=(), signal=_btc_gate, inputs="bars",
                     informative=lambda p: (InformativeInput("btc", symbol="BTC/USDT"),))


def _cross_leak(bars: Bars, p: Mapping[str, Any]) -> np.ndarray:
    btc = informative(bars, "btc")
    nxt = np.minimum(btc.index + 1, len(btc.bars) - 1)
    return (btc.bars.close[nxt] > btc.bars.open[nxt]).astype(float)


CROSS_LEAK = StrategyKind("eth_peeks_btc", params=(), signal=_cross_leak, inputs="bars",
                          informative=lambda p: (InformativeInput("btc", symbol="BTC/USDT"),))


@pytest.fixture(scope="module")
def pair() -> tuple[pd.DataFrame, pd.DataFrame]:
    eth = load("sample:bars=400,timeframe=1h,seed=1")
    btc = load("sample:bars=400,timeframe=1h,seed=2")
    eth.attrs["symbol"], btc.attrs["symbol"] = "ETH/USDT", "BTC/USDT"
    return eth, btc


def test_cross_asset_kind_backtests_and_passes_lookahead(pair):
    eth, btc = pair
    target = CROSS.signals(eth, {}, informative={"btc": btc})
    expected = (btc["close"] > btc["open"]).astype(float).to_numpy()  # same bar, same close
    np.testing.assert_array_equal(target, expected)
    assert check_lookahead(CROSS, eth, {}, informative={"btc": btc}).passed
    leak = check_lookahead(CROSS_LEAK, eth, {}, informative={"btc": btc}, n_checks=50)
    assert not leak.passed


def test_run_backtest_of_htf_trend_equals_its_independent_targets(hourly):
    p = _params("ema")
    expected = _expected_targets(hourly, p)
    replay = StrategyKind("replay_targets", params=(), signal=lambda df, q: expected)
    ours = run_backtest("htf_trend", hourly, [p, _params("ma")])
    theirs = run_backtest(replay, hourly)
    np.testing.assert_allclose(ours.equity.iloc[:, 0].to_numpy(),
                               theirs.equity.iloc[:, 0].to_numpy(), rtol=1e-12)
    eth_btc = run_backtest(CROSS, hourly.iloc[:400], informative={
        "btc": load("sample:bars=400,timeframe=1h,seed=2")})
    assert len(eth_btc.fills) > 0


def test_a_base_gap_under_a_higher_timeframe_is_a_data_error(hourly):
    holed = hourly.drop(hourly.index[101])
    holed.attrs.update(hourly.attrs)
    with pytest.raises(DataError, match=r"4h\).*is missing"):
        get_kind("htf_trend").signals(holed, _params())


def test_a_sweep_aligns_each_informative_input_once(hourly, monkeypatch):
    import quantlib.core.informative as info
    import quantlib.core.trend as trend_module

    calls = {"align": 0, "average": 0}
    real_align, real_sma = info.align, trend_module.sma

    def counting_align(*args):
        calls["align"] += 1
        return real_align(*args)

    def counting_sma(bars, window):
        calls["average"] += 1 if len(bars) < len(hourly) else 0  # 4h bars only
        return real_sma(bars, window)

    monkeypatch.setattr(info, "align", counting_align)
    monkeypatch.setattr(trend_module, "sma", counting_sma)
    grid = [{**_params("ma", w), "inner_params": {"fast": f, "slow": 20}}
            for f in (3, 5, 8) for w in (4, 6)]
    result = run_backtest("htf_trend", hourly, grid)
    assert calls["align"] == 1  # one 4h input, aligned once for the 6 combinations
    assert calls["average"] == 6  # the gate asks per combination ...
    # ... but the cached indicator makes the 6 combinations share 2 averages: same targets as
    # each combination run alone
    for col, p in enumerate(grid):
        alone = run_backtest("htf_trend", hourly, p)
        np.testing.assert_array_equal(result.equity.iloc[:, col].to_numpy(),
                                      alone.equity.iloc[:, 0].to_numpy())
