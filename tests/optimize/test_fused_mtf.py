"""The fused path of ``htf_trend`` (``quantlib.optimize.fused_mtf``) against ``run_backtest``.

The independent computation is ``run_backtest`` (vectorbt's ``from_signals`` on the targets the
kind itself computes: inner kind, resampled trend, closed-bar alignment, gate). Every fused
metric must agree to a relative 1e-9 for ``htf_trend`` around every built-in inner kind, with
stops, trailing stops and every direction, on random and on real BTC/USDT hours; so must the
return moments. The trend masks are checked against a pandas ``merge_asof`` on closed-bar times
and against themselves computed on truncated data (no lookahead).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quantlib.core import get_kind
from quantlib.core.kinds import ema_length
from quantlib.core.registry import Param, StrategyKind, register
from quantlib.optimize.fused import FUSED_METRICS, fused_evaluate, fused_plan, fused_unsupported
from quantlib.optimize.fused_mtf import GatedPlan, trend_masks
from quantlib.optimize.sweep import sweep
from tests.optimize.test_fused import CONFIGS, PARAMS, _assert_metrics_agree
from tests.support.fused_checks import check_fused, random_bars

TRENDS = [("4h", "ma", 6), ("4h", "ema", 10), ("1d", "ma", 3)]


def _htf(inner: str, inner_params: dict, trend: tuple[str, str, int]) -> dict[str, Any]:
    timeframe, kind, window = trend
    return {"inner_kind": inner, "inner_params": inner_params, "trend_timeframe": timeframe,
            "trend_kind": kind, "trend_window": window}


def _grid(inner: str, trends=TRENDS) -> list[dict[str, Any]]:
    return [_htf(inner, p, t) for p in PARAMS[inner] for t in trends]


def _check(params: list[dict], data: pd.DataFrame, config: dict, n_splits: int = 4) -> None:
    check_fused(fused_evaluate, FUSED_METRICS, "htf_trend", data, params, config, n_splits,
                f"htf_trend({params[0]['inner_kind']}) {config}")


@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(300, 900),
       flat=st.sampled_from([0.0, 0.3]), inner=st.sampled_from(sorted(PARAMS)),
       config=st.sampled_from(CONFIGS), fees=st.sampled_from([0.0, 0.001]))
def test_fused_htf_trend_equals_run_backtest_on_random_bars(seed, n, flat, inner, config, fees):
    _check(_grid(inner), random_bars(seed, n, flat), {"fees": fees, **config})


@pytest.mark.parametrize("config", [CONFIGS[0], CONFIGS[1], CONFIGS[2], CONFIGS[3]],
                         ids=["longonly", "sl_tp", "short_trail", "both_sl_tp"])
def test_fused_htf_trend_equals_run_backtest_on_real_bars(shared_data, config):
    data = shared_data("btc_usdt_1h_2022_2023.csv").iloc[:3000]  # no gaps (2017 has some)
    for inner in sorted(PARAMS):
        _check(_grid(inner, TRENDS[:2]), data, {"fees": 0.001, **config}, n_splits=8)


def _momentum(bars, p):
    out = np.zeros(len(bars.close))
    lag = p["lag"]
    out[lag:] = np.sign(bars.close[lag:] - bars.close[:-lag])
    return out


# a signal kind with no fused kernel: its htf_trend combinations run on run_backtest
MOMENTUM = register(StrategyKind("test_fused_mtf_momentum", params=(Param("lag", int, 3),),
                                 signal=_momentum, warmup=lambda p: p["lag"], inputs="bars"),
                    replace=True)


def test_mixed_inner_kinds_keep_the_sweep_order_and_agree():
    data = random_bars(4, 700, 0.1)
    params = [_htf("macd", PARAMS["macd"][0], TRENDS[0]),
              _htf(MOMENTUM.name, {"lag": 3}, TRENDS[1]),
              _htf("ma_cross", PARAMS["ma_cross"][1], TRENDS[2]),
              _htf("macd", PARAMS["macd"][1], TRENDS[1]),
              _htf(MOMENTUM.name, {"lag": 7}, TRENDS[0])]
    config = {"direction": "both", "size_type": "value", "size": 3000.0, "sl_stop": 0.02}
    _check(params, data, config)
    plan = fused_plan(get_kind("htf_trend"), data, params, config, 4)
    assert isinstance(plan, GatedPlan)
    assert [g.plan is None for g in plan.groups] == [False, True, False]
    whole, _ = plan.evaluate()
    pieces = pd.concat([plan.evaluate(0, 2)[0], plan.evaluate(2, 5)[0]], ignore_index=True)
    pd.testing.assert_frame_equal(pieces, whole)


def _pandas_mask(data: pd.DataFrame, trend: tuple[str, str, int]) -> np.ndarray:
    """The trend direction visible at each 1h bar: resample, average, merge_asof on the
    higher bars' close times (a bar is visible once it has closed)."""
    timeframe, kind, window = trend
    step = pd.Timedelta(timeframe)
    per = int(step / pd.Timedelta("1h"))
    high = data.resample(step, origin="epoch").agg({"close": "last", "open": "count"})
    high = high[high["open"] == per]
    close = high["close"].to_numpy()
    if kind == "ma":
        average = pd.Series(close).rolling(window).mean().to_numpy()
    else:  # the kinds' finite EMA: ema_length(span) renormalised weights
        alpha, length = 2.0 / (window + 1.0), ema_length(window)
        weights = (1 - alpha) ** np.arange(length)
        average = np.full(len(close), np.nan)
        for t in range(length - 1, len(close)):
            average[t] = weights @ close[t - length + 1: t + 1][::-1] / weights.sum()
    right = pd.DataFrame({"closed": high.index + step, "direction": np.sign(close - average)})
    left = pd.DataFrame({"closed": data.index + pd.Timedelta("1h")})
    return pd.merge_asof(left, right, on="closed")["direction"].fillna(0.0).to_numpy()


def test_trend_masks_match_pandas_and_use_only_closed_higher_bars(shared_data):
    data = shared_data("btc_usdt_1h_2022_2023.csv").iloc[:1500]
    kind = get_kind("htf_trend")
    params = [kind.validate(_htf("ma_cross", PARAMS["ma_cross"][0], t)) for t in TRENDS]
    masks, row = trend_masks(kind, data, params)
    assert sorted(row.tolist()) == [0, 1, 2] and masks.shape == (3, len(data))
    for i, trend in enumerate(TRENDS):
        np.testing.assert_array_equal(masks[row[i]], _pandas_mask(data, trend), err_msg=trend)
    # truncation: the mask up to bar t is the same when the data ends at t (cuts inside a 4h /
    # 1d period, on its last bar and right after it)
    for end in (100, 101, 103, 104, 500, 743, 744, 745, 1177):
        cut, _ = trend_masks(kind, data.iloc[:end], params)
        np.testing.assert_array_equal(cut, masks[:, :end], err_msg=f"end={end}")
    # a change to the still-forming 4h bar's later hours never reaches the bars before them
    t = int(np.flatnonzero(data.index.hour % 4 == 1)[40])  # the 2nd hour of a 4h bar
    changed = data.copy()
    changed.iloc[t + 1: t + 3, changed.columns.get_indexer(["close", "high"])] *= 1.5
    moved, _ = trend_masks(kind, changed, params)
    np.testing.assert_array_equal(moved[:, : t + 1], masks[:, : t + 1])
    assert (moved[:, t + 1:] != masks[:, t + 1:]).any()  # the change is seen once it closes


def test_sweep_walk_forward_and_optuna_take_the_fused_path():
    from quantlib.optimize.study import Objective
    from quantlib.optimize.walkforward import WalkForwardSplitter, walk_forward

    data = random_bars(9, 900, 0.0)
    kind = get_kind("htf_trend")
    assert fused_unsupported(kind, data) is None
    params = _grid("ma_cross")
    fused = sweep(kind, data, params, progress=False, n_splits=4, chunk_size=4)
    slow = sweep(kind, data, params, progress=False, n_splits=4, engine="vectorbt")
    assert fused.engine == "fused" and slow.engine.startswith("vectorbt")
    _assert_metrics_agree(fused.table[list(FUSED_METRICS)], slow.table, "sweep")
    assert fused.best_params == slow.best_params
    assert fused.dsr == pytest.approx(slow.dsr, rel=1e-8) and fused.pbo == slow.pbo
    wf = walk_forward("htf_trend", data, WalkForwardSplitter(400, 200), space=params[:4],
                      n_splits=4)
    assert (wf.splits["is_engine"] == "fused").all()
    from quantlib.optimize.space import SearchSpace

    space = SearchSpace.from_kind(kind, {"inner_kind": ["ma_cross"],
                                         "inner_params": [{"fast": 3, "slow": 12}],
                                         "trend_window": (3, 12)})
    assert Objective("htf_trend", data, space, ("sharpe",), n_splits=4)._fused()
