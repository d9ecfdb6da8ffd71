"""Sweeps: chunked == one call == single backtests; DSR/PBO from the full equity matrix; dask."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantlib.backtest import run_backtest
from quantlib.data import load
from quantlib.errors import ParameterError
from quantlib.optimize.stats import ReturnMoments, deflated_sharpe_ratio, overfitting_report
from quantlib.optimize.sweep import BYTES_PER_CELL, chunk_size_for, sweep

GRID_SPACE = {"n_levels": [4, 8, 16], "lower_pct": [0.05, 0.2], "upper_pct": [0.05, 0.2]}


@pytest.fixture(scope="module")
def data():
    return load("sample:seed=1,bars=1500")


def test_grid_sweep_matches_single_backtests_and_chunks(data):
    whole = sweep("grid", data, GRID_SPACE, progress=False, n_splits=8)
    chunked = sweep("grid", data, GRID_SPACE, progress=False, n_splits=8, chunk_size=5)
    assert len(whole.table) == 12 and whole.n_trials == 12
    pd.testing.assert_frame_equal(whole.table, chunked.table)
    assert whole.pbo == chunked.pbo and whole.dsr == pytest.approx(chunked.dsr, abs=1e-12)
    for i in (0, 7, 11):
        single = run_backtest("grid", data, [whole.table.loc[i, "params"]]).metrics.iloc[0]
        row = whole.table.loc[i, single.index]
        np.testing.assert_allclose(row.astype(float), single.astype(float), rtol=1e-12)


def test_overfitting_stats_equal_full_matrix_computation(data):
    res = sweep("grid", data, GRID_SPACE, progress=False, n_splits=8, chunk_size=4)
    full = run_backtest("grid", data, list(res.table["params"]))
    eq = full.equity.to_numpy()
    rets = eq / np.vstack([np.full((1, eq.shape[1]), 10_000.0), eq[:-1]]) - 1.0
    best = int(np.nanargmax(full.metrics["sharpe"].to_numpy()))
    ref = overfitting_report(ReturnMoments.from_returns(rets, 8), best_index=best)
    assert res.report.best_index == best
    assert res.pbo == pytest.approx(ref.pbo) and res.dsr == pytest.approx(ref.dsr, rel=1e-9)
    # DSR from its definition with the trial Sharpes of the matrix (ddof=1 everywhere).
    col = rets[:, best]
    sr = col.mean() / col.std(ddof=1)
    all_sr = rets.mean(0) / rets.std(0, ddof=1)
    n = len(col)
    m2 = ((col - col.mean()) ** 2).mean()
    skew = ((col - col.mean()) ** 3).mean() / m2**1.5 * np.sqrt(n * (n - 1)) / (n - 2)
    assert res.report.best_sharpe == pytest.approx(sr)
    g1 = skew
    from scipy.stats import kurtosis
    k = kurtosis(col, fisher=False, bias=False)
    assert res.dsr == pytest.approx(
        deflated_sharpe_ratio(sr, n, 12, float(np.var(all_sr, ddof=1)), g1, k), rel=1e-9)


def test_sorting_and_objectives(data):
    res = sweep("grid", data, GRID_SPACE, progress=False, n_splits=8, objective="max_drawdown")
    mdd = res.table["max_drawdown"]
    assert res.table.loc[res.report.best_index, "max_drawdown"] == mdd.max()  # closest to 0
    assert list(res.sorted()["max_drawdown"]) == sorted(mdd, reverse=True)
    assert list(res.sorted("sharpe")["sharpe"]) == sorted(res.table["sharpe"], reverse=True)
    assert "DSR" in res.summary() and "PBO" in res.summary()


def test_random_sweep_and_memory_budget(data):
    res = sweep("grid", data, {"n_levels": (4, 30), "lower_pct": (0.02, 0.3)}, method="random",
                n_samples=7, seed=3, progress=False, n_splits=4)
    again = sweep("grid", data, {"n_levels": (4, 30), "lower_pct": (0.02, 0.3)},
                  method="random", n_samples=7, seed=3, progress=False, n_splits=4)
    pd.testing.assert_frame_equal(res.table, again.table)
    assert len(res.table) == 7
    # budget / (bars x bytes per cell): 10 MiB over 1000 bars at 250 B -> 41 combinations.
    assert BYTES_PER_CELL == 250 and chunk_size_for(1000, 10.0) == 41
    assert chunk_size_for(10**6, 1.0) == 1  # never 0
    with pytest.raises(ParameterError, match="n_samples"):
        sweep("grid", data, {"n_levels": (4, 30)}, method="random", progress=False)
    with pytest.raises(ParameterError, match="objective 'nope'"):
        sweep("grid", data, GRID_SPACE, objective="nope", progress=False, n_splits=8)


def test_ma_sweep_table_is_tidy(data):
    res = sweep("ma_cross", data, {"fast": [5, 10], "slow": [20, 40, 80]}, progress=False,
                n_splits=8, chunk_size=4)
    assert list(res.table[["fast", "slow"]].itertuples(index=False, name=None)) == [
        (5, 20), (5, 40), (5, 80), (10, 20), (10, 40), (10, 80)]
    single = run_backtest("ma_cross", data, {"fast": 10, "slow": 40}).metrics.iloc[0]
    assert res.table.loc[4, "sharpe"] == pytest.approx(single["sharpe"], rel=1e-10)


def test_dask_local_cluster_gives_the_serial_result(data):
    serial = sweep("grid", data, GRID_SPACE, progress=False, n_splits=8, chunk_size=3)
    fanned = sweep("grid", data, GRID_SPACE, progress=False, n_splits=8, chunk_size=3,
                   scheduler="local")
    pd.testing.assert_frame_equal(serial.table, fanned.table)
    np.testing.assert_array_equal(serial.moments.block_sum, fanned.moments.block_sum)
    assert serial.pbo == fanned.pbo and serial.dsr == fanned.dsr
