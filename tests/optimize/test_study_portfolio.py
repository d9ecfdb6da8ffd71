"""Studies and sweeps over a {symbol: frame} portfolio: bars are counted per frame, not symbols."""

from __future__ import annotations

import pytest

from quantlib.backtest.engine import run_backtest
from quantlib.core import get_kind
from quantlib.data import load
from quantlib.errors import ParameterError
from quantlib.optimize.space import SearchSpace
from quantlib.optimize.study import run_study
from quantlib.optimize.study_checks import bar_count, experiment_identity
from quantlib.optimize.sweep import _cells_per_combination


@pytest.fixture(scope="module")
def portfolio():
    return {"BTC/USDT": load("sample:bars=1200,seed=1"), "ETH/USDT": load("sample:bars=1200,seed=2")}


def test_portfolio_study_scores_each_trial_as_run_backtest(portfolio):
    res = run_study("ma_cross", portfolio, space={"fast": (3, 10), "slow": (15, 40)},
                    n_trials=6, n_splits=4, sampler="random", storage="memory")
    trials = res.trials
    assert len(trials) == 6 and (trials["state"] == "COMPLETE").all()
    for _, row in trials.iterrows():
        params = {"fast": int(row["fast"]), "slow": int(row["slow"])}
        expected = run_backtest("ma_cross", portfolio, params).metrics["sharpe"].iloc[0]
        assert row["sharpe"] == pytest.approx(expected, rel=1e-9)


def test_portfolio_bars_not_symbols(portfolio):
    short = {"BTC/USDT": portfolio["BTC/USDT"].iloc[:20], "ETH/USDT": portfolio["ETH/USDT"]}
    assert bar_count(portfolio) == 1200 and bar_count(short) == 20
    assert _cells_per_combination(portfolio) == 2400
    with pytest.raises(ParameterError, match="20 bars are too few for 16 CSCV blocks"):
        run_study("ma_cross", short, n_trials=2, storage="memory")


def test_portfolio_identity_depends_on_frames_and_their_order(portfolio):
    space = SearchSpace.from_kind(get_kind("ma_cross"), None)
    ident = experiment_identity("ma_cross", portfolio, space, ["sharpe"], 16)
    swapped = dict(reversed(list(portfolio.items())))
    assert experiment_identity("ma_cross", swapped, space, ["sharpe"], 16)["data_sha256"] != \
        ident["data_sha256"]  # symbols settle in dict order: another order is another experiment
    again = {k: v.copy() for k, v in portfolio.items()}
    assert experiment_identity("ma_cross", again, space, ["sharpe"], 16) == ident


def test_benchmark_objective_study_runs_fused_and_scores_as_run_backtest():
    from quantlib.optimize.study import Objective

    data = load("sample:bars=1200,seed=3")
    space = SearchSpace.from_kind(get_kind("ma_cross"), {"fast": (3, 10), "slow": (15, 40)})
    objective = Objective("ma_cross", data, space, ("excess_sharpe",), None, None, None, 4)
    assert objective._fused()  # no longer falls back to vectorbt for a relative objective
    res = run_study("ma_cross", data, space={"fast": (3, 10), "slow": (15, 40)}, n_trials=5,
                    n_splits=4, sampler="random", objectives=("excess_sharpe",), storage="memory")
    for _, row in res.trials.iterrows():
        params = {"fast": int(row["fast"]), "slow": int(row["slow"])}
        expected = run_backtest("ma_cross", data, params).metrics["excess_sharpe"].iloc[0]
        assert row["excess_sharpe"] == pytest.approx(expected, rel=1e-9)


def test_pruned_portfolio_study_completes_with_run_backtest_values(portfolio):
    res = run_study("ma_cross", portfolio, space={"fast": (3, 10), "slow": (15, 40)},
                    n_trials=6, n_splits=4, sampler="random", pruner="median", storage="memory")
    done = res.trials[res.trials["state"] == "COMPLETE"]
    assert len(done) >= 1
    for _, row in done.iterrows():
        params = {"fast": int(row["fast"]), "slow": int(row["slow"])}
        expected = run_backtest("ma_cross", portfolio, params).metrics["sharpe"].iloc[0]
        assert row["sharpe"] == pytest.approx(expected, rel=1e-9)
