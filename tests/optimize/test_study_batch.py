"""Batched optuna trials (``quantlib.optimize.study_batch``): a batched study must hold the same
trials as the sequential one (same parameters, states, values, stored metrics and moments, DSR
and PBO), and the values must be those of ``run_backtest`` for each trial's parameters (the
independent computation: vectorbt's simulation and the shared metrics)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from quantlib.backtest import run_backtest
from quantlib.optimize.study import run_study


def _bars(seed: int, n: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, n)))
    open_ = np.r_[close[0], close[:-1]]
    index = pd.date_range("2024-01-01", periods=n, freq="1h", tz="UTC", name="timestamp")
    df = pd.DataFrame({"open": open_, "high": np.maximum(open_, close) * 1.002,
                       "low": np.minimum(open_, close) * 0.998, "close": close,
                       "volume": np.ones(n)}, index=index)
    df.attrs.update(source="synthetic", timeframe="1h", symbol="TEST/USDT")
    return df


def _summary(result) -> list[tuple]:
    return [(t.number, t.state.name, t.params, t.values, t.user_attrs.get("metrics"),
             t.user_attrs.get("moments")) for t in result.study.trials]


def _same_study(a, b) -> None:
    assert _summary(a) == _summary(b)
    assert a.ran_trials == b.ran_trials
    assert (math.isnan(a.dsr) and math.isnan(b.dsr)) or a.dsr == b.dsr
    assert (math.isnan(a.pbo) and math.isnan(b.pbo)) or a.pbo == b.pbo


@pytest.fixture
def evaluated(monkeypatch):
    """The sizes of the parameter lists each backtest call of the objective received."""
    from quantlib.optimize.study import Objective

    sizes: list[int] = []
    original = Objective.evaluate

    def counting(self, params):
        sizes.append(len(params))
        return original(self, params)

    monkeypatch.setattr(Objective, "evaluate", counting)
    return sizes


@pytest.mark.parametrize("options", [{}, {"min_trades": 3}, {"objectives": ("sharpe",
                                                                            "max_drawdown")}])
def test_a_batched_random_study_is_the_sequential_one(options, evaluated):
    data = _bars(1, 700)
    # fast and slow overlap: some draws violate fast < slow and are pruned in both runs
    common = dict(space={"fast": (2, 30), "slow": (10, 60)}, sampler="random", n_trials=23,
                  storage="memory", seed=7, n_splits=4, **options)
    one = run_study("ma_cross", data, batch_size=1, **common)
    assert set(evaluated) == {1}
    evaluated.clear()
    batched = run_study("ma_cross", data, batch_size=8, **common)
    assert len(evaluated) == 3 and max(evaluated) > 1  # batches of 8, 8 and 7 trials
    assert {t.state.name for t in one.study.trials} >= {"COMPLETE", "PRUNED"}
    _same_study(one, batched)


def test_batched_values_are_run_backtests():
    data = _bars(2, 600)
    res = run_study("ma_cross", data, space={"fast": (2, 9), "slow": (12, 40)},
                    sampler="random", n_trials=12, storage="memory", seed=3, n_splits=4,
                    batch_size=12)
    done = [t for t in res.study.trials if t.state.name == "COMPLETE"]
    reference = run_backtest("ma_cross", data, [t.user_attrs["params"] for t in done])
    sharpe = reference.metrics["sharpe"].to_numpy()
    np.testing.assert_allclose([t.value for t in done], sharpe, rtol=1e-9)


def test_enqueued_trials_batch_under_tpe_with_the_values_of_a_sequential_study():
    data = _bars(3, 600)
    enqueue = [{"fast": f, "slow": s} for f in (3, 5, 8) for s in (20, 30)] + [
        {"fast": 30, "slow": 20}]  # violates fast < slow: pruned
    common = dict(space={"fast": (2, 30), "slow": (12, 60)}, sampler="tpe", n_trials=9,
                  storage="memory", seed=0, n_splits=4, enqueue=enqueue)
    one = run_study("ma_cross", data, batch_size=1, **common)
    batched = run_study("ma_cross", data, batch_size=64, **common)
    head = len(enqueue)
    assert _summary(one)[:head] == _summary(batched)[:head]
    assert [t.params for t in batched.study.trials[:head]] == enqueue
    assert batched.study.trials[head - 1].state.name == "PRUNED"
    assert len(batched.study.trials) == 9


def test_batch_size_below_one_is_refused_by_name():
    from quantlib.errors import ParameterError

    with pytest.raises(ParameterError, match="batch_size"):
        run_study("ma_cross", _bars(4, 300), sampler="random", n_trials=2, storage="memory",
                  n_splits=4, batch_size=0)


def test_two_workers_batch_random_trials_into_one_sqlite_study(tmp_path):
    data = _bars(5, 500)
    res = run_study("ma_cross", data, space={"fast": (2, 9), "slow": (12, 40)},
                    sampler="random", n_trials=10, storage=f"sqlite:///{tmp_path}/s.db",
                    study_name="batched", seed=2, n_splits=4, n_workers=2, batch_size=5)
    assert sorted(res.ran_trials) == list(range(10))
    done = [t for t in res.study.trials if t.state.name == "COMPLETE"]
    assert done
    reference = run_backtest("ma_cross", data, [t.user_attrs["params"] for t in done])
    np.testing.assert_allclose([t.value for t in done], reference.metrics["sharpe"].to_numpy(),
                               rtol=1e-9)
