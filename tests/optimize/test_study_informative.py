"""Optuna studies and sweeps over a kind with an informative input from another symbol
(``regime_filter_cross``: ETH trades gated by BTC's regime): the other symbol's frame is passed
as ``run_backtest`` takes it, and each trial's value is ``run_backtest``'s for its parameters
with that frame (the independent computation)."""

from __future__ import annotations

import numpy as np
import pytest

from quantlib.backtest import run_backtest
from quantlib.errors import ParameterError
from quantlib.optimize.space import SearchSpace
from quantlib.optimize.study import run_study
from quantlib.optimize.sweep import sweep
from tests.support.cross_markets import eth_btc_fixtures

FIXED = {"inner_kind": "ma_cross", "inner_params": {"fast": 5, "slow": 30},
         "vol_window": 12, "filter_window": 30, "allowed_regimes": [0]}

eth, btc = eth_btc_fixtures(700, btc_start=50)


def _space() -> SearchSpace:
    return SearchSpace.from_kind("regime_filter_cross", {"min_proba": (0.3, 0.8)}, FIXED)


def test_a_study_with_another_symbols_frame_scores_like_run_backtest(eth, btc):
    given = {"regime": btc}
    res = run_study("regime_filter_cross", eth, space=_space(), sampler="random", n_trials=4,
                    storage="memory", seed=1, n_splits=4, objectives="total_return",
                    informative=given)
    done = [t for t in res.study.trials if t.state.name == "COMPLETE"]
    assert len(done) == 4
    for trial in done:
        reference = run_backtest("regime_filter_cross", eth, trial.user_attrs["params"],
                                 informative=given).metrics.iloc[0]
        assert trial.value == pytest.approx(float(reference["total_return"]), rel=1e-12)
    # without the frame the study is refused, naming the input it lacks
    with pytest.raises(ParameterError, match="'regime' .*BTC/USDT.*no data"):
        run_study("regime_filter_cross", eth, space=_space(), sampler="random", n_trials=1,
                  storage="memory", seed=1, n_splits=4)


def test_a_sweep_with_another_symbols_frame_equals_run_backtest(eth, btc):
    given = {"regime": btc}
    params = [{**FIXED, "min_proba": m} for m in (0.4, 0.6)]
    res = sweep("regime_filter_cross", eth, params, progress=False, n_splits=4,
                informative=given)
    reference = run_backtest("regime_filter_cross", eth, params, informative=given).metrics
    np.testing.assert_allclose(res.table["sharpe"].to_numpy(),
                               reference["sharpe"].to_numpy(), rtol=1e-12)
    assert res.engine.startswith("vectorbt")
