"""The fused sweep kernel (``quantlib.backtest.sweep_nb`` via ``quantlib.optimize.fused``)
against ``run_backtest``.

The independent computation is ``run_backtest``: vectorbt's ``Portfolio.from_signals`` with its
own stops, order and trade records (on bars where a signal exit is due at the open it is
given the open as high/low, so that the signal comes first: ``stop_rule.py``), and
``compute_metrics_frame`` on the equity it yields. Every
metric the fused kernel produces must agree to a relative 1e-9 for every built-in signal kind,
both directions, value and percent sizing, stops, trailing stops, slippage, both executions, on
random bars (hypothesis) and on real BTC/USDT hours; so must the return moments that DSR and PBO
are computed from.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quantlib.backtest import run_backtest
from quantlib.core import get_kind
from quantlib.errors import ParameterError
from quantlib.optimize.fused import FUSED_METRICS, fused_evaluate, fused_unsupported
from quantlib.optimize.sweep import sweep
from tests.support.fused_checks import (
    KIND_PARAMS,
    RTOL,
    assert_metrics_agree,
    check_fused,
    random_bars,
)

# the one-symbol tests add a third ma_cross set to the shared ones
PARAMS = {**KIND_PARAMS, "ma_cross": [*KIND_PARAMS["ma_cross"], {"fast": 12, "slow": 30}]}

CONFIGS = [
    {},
    {"sl_stop": 0.01, "tp_stop": 0.02, "slippage_bps": 3.0},
    {"direction": "shortonly", "trail_stop": 0.015, "size": 0.5, "fees": 0.0005},
    {"direction": "both", "size_type": "value", "size": 2500.0, "sl_stop": 0.02,
     "tp_stop": 0.01, "slippage_bps": 2.0},
    {"direction": "both", "size_type": "value", "size": 40_000.0, "execution": "close",
     "trail_stop": 0.01},  # entries bigger than the cash: partial fills
]


def _assert_metrics_agree(fused: pd.DataFrame, reference: pd.DataFrame, where: str) -> None:
    assert_metrics_agree(fused, reference, where, FUSED_METRICS)


def _check(kind: str, data: pd.DataFrame, params: list[dict], config: dict,
           n_splits: int = 4) -> None:
    check_fused(fused_evaluate, FUSED_METRICS, kind, data, params, config, n_splits,
                f"{kind} {config}")


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(120, 700),
       flat=st.sampled_from([0.0, 0.3]), kind=st.sampled_from(sorted(PARAMS)),
       config=st.sampled_from(CONFIGS), fees=st.sampled_from([0.0, 0.001, 0.004]))
def test_fused_metrics_equal_run_backtest_on_random_bars(seed, n, flat, kind, config, fees):
    config = {"fees": fees, **config}
    _check(kind, random_bars(seed, n, flat), PARAMS[kind], config)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: ",".join(c) or "default")
def test_fused_metrics_equal_run_backtest_on_real_bars(shared_data, config):
    data = shared_data("btc_usdt_1h_2017_2020.csv").iloc[:4000]
    for kind, params in PARAMS.items():
        _check(kind, data, params, config, n_splits=8)


def _plateaus(seed: int, n: int) -> pd.DataFrame:
    """Prices that sit on long plateaus (every SMA/EMA/band ties exactly there: the
    approximate rows cannot decide those bars, the kinds' own values must) and jump between
    them, at a price scale where running sums lose the most bits."""
    rng = np.random.default_rng(seed)
    level = 3e4 * np.exp(np.cumsum(rng.normal(0.0, 0.02, n // 40 + 1)))
    close = np.repeat(level, 40)[:n]
    df = random_bars(seed, n, 0.0)
    df["close"] = close
    df["open"] = np.r_[close[0], close[:-1]]
    df["high"] = np.maximum(df["open"], close) * 1.001
    df["low"] = np.minimum(df["open"], close) * 0.999
    return df


@pytest.mark.parametrize("kind", sorted(PARAMS))
def test_exact_ties_on_plateaus_decide_like_the_kind(kind):
    data = _plateaus(2, 900)
    params = [{**p, "fast": 3, "slow": 9} if kind == "macd" else p for p in PARAMS[kind]]
    for config in ({}, {"direction": "both", "size_type": "value", "size": 2500.0}):
        _check(kind, data, params, config)


def test_a_sweep_runs_fused_and_matches_the_vectorbt_sweep():
    data = random_bars(11, 900, 0.1)
    space = {"fast": [3, 5, 8], "slow": [20, 40]}
    fused = sweep("ma_cross", data, space, progress=False, n_splits=4, chunk_size=4)
    slow = sweep("ma_cross", data, space, progress=False, n_splits=4, engine="vectorbt")
    assert fused.engine == "fused" and slow.engine.startswith("vectorbt")
    _assert_metrics_agree(fused.table[list(FUSED_METRICS)], slow.table, "sweep")
    assert fused.best_params == slow.best_params
    assert fused.dsr == pytest.approx(slow.dsr, rel=1e-8)
    assert fused.pbo == slow.pbo


def test_requests_the_fused_path_cannot_serve_fall_back_with_a_reason():
    data = random_bars(5, 300, 0.0)
    ma = get_kind("ma_cross")
    assert fused_unsupported(ma, data) is None
    assert "benchmark_return" in fused_unsupported(ma, data, None, "benchmark_return")
    # portfolios and benchmark objectives of sweeps run fused (tests/optimize/test_fused_portfolio.py
    # and test_fused_benchmark.py hold them equal to run_backtest)
    assert fused_unsupported(ma, {"A": data, "B": data}, None, "alpha") is None
    assert fused_unsupported(ma, data, None, "alpha", benchmark_ok=True) is None
    assert "not one of the built-in" in fused_unsupported(get_kind("grid"), data)
    assert "htf_trend" in fused_unsupported(get_kind("htf_trend"), data, None, "alpha",
                                            benchmark_ok=True)
    with pytest.raises(ParameterError, match="engine='fused' cannot run.*direction='both'"):
        sweep("ma_cross", data, {"fast": [3], "slow": [20]}, progress=False, n_splits=4,
              objective="benchmark_sharpe", engine="fused", config={"direction": "both"})


def test_walk_forward_searches_in_sample_on_the_fused_kernel():
    from quantlib.optimize.walkforward import WalkForwardSplitter, walk_forward

    wf = walk_forward("ma_cross", random_bars(8, 900, 0.0), WalkForwardSplitter(300, 200),
                      space={"fast": [3, 6], "slow": [20, 30]}, n_splits=4)
    assert (wf.splits["is_engine"] == "fused").all()


def test_optuna_trials_score_with_the_fused_kernel():
    from quantlib.optimize.space import SearchSpace
    from quantlib.optimize.study import Objective, run_study

    data = random_bars(21, 600, 0.1)
    space = {"fast": (2, 8), "slow": (15, 40)}
    objective = Objective("ma_cross", data, SearchSpace.from_kind(get_kind("ma_cross"), space),
                          ("sharpe",), n_splits=4)
    assert objective._fused()
    # benchmark-relative objectives run fused too (test_study_portfolio checks their values);
    # a configuration run_backtest refuses still goes there, to be refused with its message
    assert Objective("ma_cross", data, objective.space, ("benchmark_sharpe",))._fused()
    assert not Objective("ma_cross", data, objective.space, ("sharpe",),
                         config={"sl_stop": 0.02, "trail_stop": 0.02})._fused()
    res = run_study("ma_cross", data, space=space, sampler="random", n_trials=5,
                    storage="memory", seed=3, n_splits=4)
    trials = [t for t in res.study.trials if "metrics" in t.user_attrs]
    assert trials
    params = [t.user_attrs["params"] for t in trials]
    reference = run_backtest("ma_cross", data, params).metrics.reset_index(drop=True)
    for i, trial in enumerate(trials):
        for name in ("sharpe", "total_return", "max_drawdown", "n_trades"):
            assert trial.user_attrs["metrics"][name] == pytest.approx(
                float(reference.loc[i, name]), rel=RTOL, nan_ok=True), (name, params[i])


def test_walk_forward_optuna_with_a_benchmark_objective_runs_and_says_fused():
    from quantlib.optimize.walkforward import WalkForwardSplitter, walk_forward

    data = random_bars(9, 900, 0.0)
    wf = walk_forward("ma_cross", data, WalkForwardSplitter(300, 200), method="random",
                      n_trials=4, space={"fast": (2, 8), "slow": (15, 40)},
                      objective="excess_sharpe", n_splits=4)
    assert (wf.splits["is_engine"] == "fused").all()
    first = wf.splits.iloc[0]  # its in-sample value is run_backtest's on the training bars
    params = {"fast": int(first["param_fast"]), "slow": int(first["param_slow"])}
    expected = run_backtest("ma_cross", data.iloc[0:300], params)
    assert first["is_value"] == pytest.approx(
        float(expected.metrics["excess_sharpe"].iloc[0]), rel=RTOL)
