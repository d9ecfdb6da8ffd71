"""Optimization figures carry exactly the numbers of the results they draw."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantlib.data import load
from quantlib.optimize.stats import probability_of_backtest_overfitting
from quantlib.optimize.study import run_study
from quantlib.optimize.sweep import sweep
from quantlib.plotting import optimize as plots


@pytest.fixture(scope="module")
def data():
    return load("sample:seed=6,bars=900")


def test_heatmap_and_surface_match_the_table(data):
    res = sweep("grid", data, {"n_levels": [4, 8, 12], "lower_pct": [0.05, 0.15]},
                progress=False, n_splits=4)
    fig = plots.plot_sweep_heatmap(res, "n_levels", "lower_pct")
    t = res.table
    for j, lp in enumerate([0.05, 0.15]):
        for i, n in enumerate([4, 8, 12]):
            expected = t.loc[(t.n_levels == n) & (t.lower_pct == lp), "sharpe"].iloc[0]
            assert fig.data[0].z[j][i] == pytest.approx(expected)
    surf = plots.plot_sweep_surface(res, "n_levels", "lower_pct", "total_return")
    assert np.nanmax(surf.data[0].z) == pytest.approx(t["total_return"].max())
    with pytest.raises(Exception, match="'nope'"):
        plots.plot_sweep_heatmap(res, "nope", "lower_pct")


def test_optuna_views_and_pbo_figures(data):
    res = run_study("grid", data, space={"n_levels": (4, 20), "lower_pct": (0.05, 0.3)},
                    sampler="random", n_trials=6, storage="memory", seed=0, n_splits=4)
    hist = plots.plot_optimization_history(res)
    ys = [v for tr in hist.data for v in (tr.y or []) if tr.mode == "markers"]
    assert sorted(ys) == pytest.approx(sorted(t.value for t in res.study.trials))
    assert plots.plot_parallel_coordinates(res).data
    imp = plots.plot_param_importances(res)
    assert set(imp.data[0].y) == {"n_levels", "lower_pct"}
    logit_fig = plots.plot_pbo_logits(res)
    assert list(logit_fig.data[0].x) == pytest.approx(list(res.report.pbo_result.logits))
    pbo = probability_of_backtest_overfitting(np.random.default_rng(1).normal(size=(240, 6)), 4)
    sc = plots.plot_is_vs_oos(pbo)
    assert list(sc.data[0].x) == pytest.approx(list(pbo.is_performance))


def test_walk_forward_figure_marks_every_split():
    from quantlib.optimize.walkforward import WalkForwardResult

    idx = pd.date_range("2024-01-01", periods=6, freq="1h", tz="UTC")
    rets = pd.Series([0.0, 0.01, -0.02, 0.03, 0.0, 0.01], index=idx)
    splits = pd.DataFrame({"test_start": [idx[0], idx[3]], "is_value": [1.0, 2.0],
                           "oos_value": [0.5, 0.5], "param_fast": [5, 7]})
    wf = WalkForwardResult(splits, rets, 100 * (1 + rets).cumprod(), "sharpe", ["fast"])
    fig = plots.plot_walk_forward(wf)
    assert len(fig.layout.shapes) == 2 and "fast=7" in fig.layout.annotations[1].text
    assert "efficiency 0.33" in fig.layout.title.text
    sc = plots.plot_is_vs_oos(wf)
    assert list(sc.data[0].x) == [1.0, 2.0]
