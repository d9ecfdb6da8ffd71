"""compare_models and compare_regime_grid checked against direct fits, closed forms and
separately run backtests (the logic notebook 03 used to hold in its cells)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantlib.backtest import run_backtest
from quantlib.backtest.grid import run_grid
from quantlib.data import synthetic_ohlcv
from quantlib.errors import DataError, ParameterError
from quantlib.regime import (
    GaussianHMMRegime,
    MarkovSwitchingRegime,
    compare_models,
    compare_regime_grid,
    regime_features,
)
from tests.regime.conftest import STICKY_MARKET

GRID = {"n_levels": 8, "lower_pct": 0.08, "upper_pct": 0.08}


@pytest.fixture(scope="module")
def small_X():
    return regime_features(synthetic_ohlcv(900, seed=2, **STICKY_MARKET).ohlcv, ["returns"])


def test_bic_table_rows_are_direct_fits(small_X):
    # Unsorted, duplicated counts: the switching comparison takes the smallest count >= 2 (a
    # 3-regime switching fit takes seconds, so only one count here).
    best, table = compare_models(small_X, [4, 1, 2, 2], switching_bars=300, n_restarts=1,
                                 random_state=0, switching_counts=1)
    full = table[table["sample"].isna()]
    recent = table[table["sample"] == "last 300 bars"]
    assert list(full.index) == [1, 2, 4] and (full["model"] == "GaussianHMM").all()
    assert list(recent.index) == [2, 2]
    assert list(recent["model"]) == ["MarkovSwitching", "GaussianHMM"]
    for k in (1, 2, 4):
        direct = GaussianHMMRegime(n_regimes=k, n_restarts=1, random_state=0).fit(small_X)
        assert full.loc[k, "loglik"] == pytest.approx(direct.loglik_, rel=1e-12)
        assert full.loc[k, "bic"] == pytest.approx(direct.bic_, rel=1e-12)
        # Free parameters of a 1-d Gaussian HMM: start (K-1) + transitions K(K-1) + mean and
        # variance per regime.
        assert full.loc[k, "n_params"] == (k - 1) + k * (k - 1) + 2 * k
    np.testing.assert_allclose(full["bic"], -2 * full["loglik"]
                               + full["n_params"] * np.log(len(small_X)), rtol=1e-12)
    assert best.n_regimes_ == int(full["bic"].idxmin())
    assert list(full["best"]) == list(full["bic"] == full["bic"].min())
    last = small_X.iloc[-300:]
    switching = MarkovSwitchingRegime(n_regimes=2, n_restarts=1, random_state=0).fit(last)
    hmm = GaussianHMMRegime(n_regimes=2, n_restarts=1, random_state=0).fit(last)
    rows = recent.set_index("model")
    assert rows.loc["MarkovSwitching", "loglik"] == pytest.approx(switching.loglik_, rel=1e-9)
    assert rows.loc["GaussianHMM", "loglik"] == pytest.approx(hmm.loglik_, rel=1e-12)
    # Switching regression: transitions K(K-1) + mean and variance per regime (no start).
    assert rows.loc["MarkovSwitching", "n_params"] == 2 * 1 + 2 * 2
    # BIC of the recent rows uses their own 300-bar sample size, not the full sample's.
    np.testing.assert_allclose(rows["bic"], -2 * rows["loglik"] + rows["n_params"] * np.log(300),
                               rtol=1e-12)


def test_switching_comparison_can_be_skipped(small_X):
    _, table = compare_models(small_X, [1, 2], switching_bars=0, n_restarts=1, random_state=0)
    assert list(table.index) == [1, 2] and "sample" not in table.columns
    with pytest.raises(ParameterError, match="switching_bars"):
        compare_models(small_X, [1, 2], switching_bars=-5)
    with pytest.raises(ParameterError, match="n_regimes"):
        compare_models(small_X, [], switching_bars=0)


@pytest.fixture(scope="module")
def chain_case():
    # A chain (volatility-tercile) regime grid: its active mask has a closed form, so the
    # filtered backtest can be rebuilt from the raw grid engine without the regime code.
    df = synthetic_ohlcv(1500, seed=4, **STICKY_MARKET).ohlcv
    vol = np.log(df["close"]).diff().rolling(12, min_periods=12).std(ddof=0)
    edges = [float(vol.quantile(1 / 3)), float(vol.quantile(2 / 3))]
    params = {"inner_kind": "grid", "inner_params": GRID, "model": "chain",
              "features": ["volatility"], "vol_window": 12, "edges": [edges], "n_bins": 3,
              "allowed_regimes": [0]}
    calm_at_close = (vol < edges[0]).to_numpy()          # NaN warm-up compares False
    active = np.r_[False, calm_at_close[:-1]]             # known before the next bar opens
    labels = pd.Series(np.digitize(vol, edges), index=df.index).iloc[100:]  # 100 unlabelled bars
    return df, params, active, labels


def test_grid_comparison_equals_separate_backtests(chain_case):
    df, params, active, labels = chain_case
    cmp = compare_regime_grid(df, params, labels)
    plain = run_backtest("grid", df, GRID)
    filtered = run_grid(df, [GRID], active=active)
    assert list(cmp.metrics.index) == ["total_return", "sharpe", "max_drawdown", "n_trades",
                                       "fees_paid"]
    for column, expected in (("plain grid", plain), ("regime-filtered grid", filtered)):
        np.testing.assert_allclose(cmp.metrics[column].to_numpy(dtype=float),
                                   expected.metrics.iloc[0][cmp.metrics.index].to_numpy(dtype=float),
                                   rtol=1e-12)
    # The regime mask changed what was traded (else the test could not tell the two apart).
    assert len(cmp.filtered.fills) != len(cmp.plain.fills)
    assert (cmp.filtered.fills.loc[cmp.filtered.fills["side"] > 0, "time"]
            .map(pd.Series(active, index=df.index))).all()


def test_grid_attribution_by_hand(chain_case):
    df, params, _, labels = chain_case
    cmp = compare_regime_grid(df, params, labels, metrics=["sharpe"])
    assert list(cmp.metrics.index) == ["sharpe"]
    for name, result in (("plain grid", cmp.plain), ("regime-filtered grid", cmp.filtered)):
        table = cmp.attribution.loc[name]
        assert table.loc["unlabelled", "bars"] == 100
        bar_return = result.equity.iloc[:, 0].pct_change()
        for regime in (0, 1, 2):
            in_regime = labels.reindex(df.index) == regime
            assert table.loc[regime, "bars"] == in_regime.sum()
            hand = np.prod(1 + bar_return[in_regime].dropna()) - 1
            assert table.loc[regime, "total_return"] == pytest.approx(hand, rel=1e-9, abs=1e-15)
        assert table["n_fills"].sum() == len(result.fills)


def test_grid_comparison_rejects_bad_input(chain_case):
    df, params, _, labels = chain_case
    with pytest.raises(ParameterError, match="metrics"):
        compare_regime_grid(df, params, labels, metrics=["sharpe", "luck"])
    with pytest.raises(DataError, match="regimes"):
        compare_regime_grid(df, params, labels.to_numpy())
    with pytest.raises(ParameterError, match="params"):
        compare_regime_grid(df, [params], labels)
