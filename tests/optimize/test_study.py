"""optuna studies: samplers, determinism, constraints, pruning, Pareto front, DSR/PBO, CLI."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pytest
from typer.testing import CliRunner

from quantlib.backtest import run_backtest
from quantlib.data import load
from quantlib.errors import ParameterError
from quantlib.optimize.stats import ReturnMoments, overfitting_report
from quantlib.optimize.study import run_study

SPACE = {"n_levels": (4, 24), "lower_pct": (0.05, 0.3), "upper_pct": (0.05, 0.3)}


@pytest.fixture(scope="module")
def data():
    return load("sample:seed=2,bars=1200")


@pytest.mark.parametrize("sampler", ["tpe", "random", "cmaes"])
def test_samplers_are_deterministic_and_best_is_real(data, sampler):
    kw = dict(space=SPACE, sampler=sampler, n_trials=8, storage="memory", seed=11, n_splits=4)
    a, b = run_study("grid", data, **kw), run_study("grid", data, **kw)
    assert [t.params for t in a.study.trials] == [t.params for t in b.study.trials]
    values = [t.value for t in a.study.trials]
    best = a.best_trials[0]
    assert best.value == max(values)
    # Independent recomputation of the best trial's objective.
    sharpe = run_backtest("grid", data, [a.best_params]).metrics["sharpe"].iloc[0]
    assert best.value == pytest.approx(sharpe, rel=1e-12)
    assert a.n_trials == 8 and np.isfinite(a.dsr) and 0 <= a.pbo <= 1


def test_study_dsr_pbo_equal_matrix_computation(data):
    res = run_study("grid", data, space=SPACE, sampler="random", n_trials=6, storage="memory",
                    seed=0, n_splits=4)
    params = [t.user_attrs["params"] for t in res.study.trials]
    eq = run_backtest("grid", data, params).equity.to_numpy()
    rets = eq / np.vstack([np.full((1, eq.shape[1]), 10_000.0), eq[:-1]]) - 1.0
    best = int(np.argmax([t.value for t in res.study.trials]))
    ref = overfitting_report(ReturnMoments.from_returns(rets, 4), best_index=best)
    assert res.dsr == pytest.approx(ref.dsr, rel=1e-9) and res.pbo == pytest.approx(ref.pbo)


def test_nsga2_pareto_front_respects_constraints(data):
    res = run_study("grid", data, space=SPACE, sampler="nsga2", n_trials=24,
                    objectives=("sharpe", "max_drawdown"), min_trades=20, max_drawdown=0.25,
                    storage="memory", seed=5, n_splits=4)
    assert [d.name for d in res.study.directions] == ["MAXIMIZE", "MINIMIZE"]
    front = res.best_trials
    assert front
    feasible = res.feasible_trials()
    for t in front:
        m = t.user_attrs["metrics"]
        assert m["n_trades"] >= 20 and abs(m["max_drawdown"]) <= 0.25
        assert t.values[1] == pytest.approx(abs(m["max_drawdown"]))
        # Nobody feasible dominates a front member.
        for o in feasible:
            assert not (o.values[0] >= t.values[0] and o.values[1] <= t.values[1]
                        and (o.values[0] > t.values[0] or o.values[1] < t.values[1]))
    infeasible = [t for t in res.study.trials if not t.user_attrs["feasible"]]
    for t in infeasible:
        m = t.user_attrs["metrics"]
        assert m["n_trades"] < 20 or abs(m["max_drawdown"]) > 0.25


def test_random_sampler_penalises_constraint_violations(data):
    res = run_study("grid", data, space=SPACE, sampler="random", n_trials=8, min_trades=10**6,
                    storage="memory", seed=1, n_splits=4)
    assert all(t.value <= -1e6 for t in res.study.trials)  # nobody can trade a million times
    assert res.best_trials == []
    with pytest.raises(ParameterError, match="no feasible"):
        _ = res.best_params


def test_median_pruner_stops_trials(data):
    res = run_study("grid", data, space=SPACE, sampler="random", n_trials=16, pruner="median",
                    storage="memory", seed=2, n_splits=4)
    states = [t.state for t in res.study.trials]
    assert optuna.trial.TrialState.PRUNED in states
    pruned = [t for t in res.study.trials if t.state == optuna.trial.TrialState.PRUNED]
    assert all(t.intermediate_values for t in pruned)
    assert res.n_trials == 16  # pruned trials count toward the DSR's N


def test_bad_arguments(data):
    with pytest.raises(ParameterError, match="unknown metric"):
        run_study("grid", data, objectives=("nope",), storage="memory")
    with pytest.raises(ParameterError, match="sampler"):
        run_study("grid", data, sampler="bogus", storage="memory", n_trials=1)
    with pytest.raises(ParameterError, match="SQLAlchemy URL"):
        run_study("grid", data, storage="reports/x.db", n_trials=1)
    with pytest.raises(ParameterError, match="multi-objective"):
        run_study("grid", data, objectives=("sharpe", "max_drawdown"), pruner="median",
                  storage="memory")


def test_cli_runs_a_study_and_a_grid_sweep(tmp_path):
    import typer

    from quantlib.optimize.cli import register

    app = typer.Typer()
    register(app)
    app.command("noop")(lambda: None)  # typer needs 2 commands to keep the sub-command name
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    out = CliRunner().invoke(app, ["optimize", "--kind", "grid", "--data",
                                   "sample:seed=2,bars=800", "--sampler", "tpe", "--trials", "4",
                                   "--storage", url, "--study", "cli", "--space",
                                   "n_levels=4:12,lower_pct=0.05:0.2", "--splits", "4", "--json"])
    assert out.exit_code == 0, out.output
    payload = json.loads(out.output.strip().splitlines()[-1])
    assert payload["n_trials"] == 4 and sorted(payload["ran_trials"]) == [0, 1, 2, 3]
    assert set(payload["best_params"]) >= {"n_levels", "lower_pct"}
    out = CliRunner().invoke(app, ["optimize", "--kind", "grid", "--data",
                                   "sample:seed=2,bars=800", "--sampler", "grid", "--space",
                                   "n_levels=4|8,lower_pct=0.05|0.2", "--splits", "4"])
    assert out.exit_code == 0, out.output
    assert "4 combinations" in out.output and "PBO" in out.output
    out = CliRunner().invoke(app, ["optimize", "--kind", "nope", "--trials", "1"])
    assert out.exit_code == 2 and "unknown strategy kind 'nope'" in out.output
