"""BIC model choice and walk-forward out-of-sample regimes."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone

from quantlib.data import synthetic_ohlcv
from quantlib.errors import ParameterError
from quantlib.regime import (
    GaussianHMMRegime,
    MarkovChainRegime,
    regime_features,
    select_n_regimes,
    walk_forward_regimes,
)
from tests.regime.conftest import STICKY_MARKET


def test_bic_recovers_the_true_number_of_regimes():
    # Near-Gaussian shocks (tail_df=60): the Gaussian HMM is well specified and BIC should pick 3.
    market = synthetic_ohlcv(4000, seed=5, **{**STICKY_MARKET, "tail_df": 60.0})
    X = regime_features(market.ohlcv, ["returns"])
    best, table = select_n_regimes(GaussianHMMRegime(n_restarts=2, random_state=0), X, [1, 2, 3, 4])
    assert best.n_regimes_ == 3 and int(table["bic"].idxmin()) == 3
    row = table.loc[2]
    assert row["bic"] == pytest.approx(-2 * row["loglik"] + row["n_params"] * np.log(len(X)))
    assert table.loc[1, "n_params"] == 2  # one mean, one variance


def test_selection_rejects_models_without_likelihood():
    with pytest.raises(ParameterError, match="bic"):
        select_n_regimes(MarkovChainRegime(), np.arange(100.0), [2], param="n_bins")


def test_walk_forward_is_out_of_sample(returns_X):
    X = returns_X.iloc[:2600]
    model = GaussianHMMRegime(3, n_restarts=1, random_state=0)
    wf = walk_forward_regimes(model, X, min_train=1000, refit_every=800, filter_context=300)
    assert wf.labels.iloc[:1000].isna().all() and wf.labels.iloc[1000:].notna().all()
    assert len(wf.refits) == 2 and wf.refits["fit_until"].iloc[1] == X.index[1799]
    # The block starting at 1800 is labelled by a model fitted on bars 0..1799 only, filtered
    # from bar 1500.
    ref = clone(model).fit(X.iloc[:1800])
    expected = ref.predict_proba(X.iloc[1500:2600]).to_numpy()[300:]
    np.testing.assert_allclose(wf.proba.to_numpy()[1800:], expected, atol=1e-12)
    # Truncating the future leaves every earlier label unchanged.
    cut = walk_forward_regimes(model, X.iloc[:2000], min_train=1000, refit_every=800,
                               filter_context=300)
    np.testing.assert_allclose(cut.proba.to_numpy()[1000:], wf.proba.to_numpy()[1000:2000])


def test_walk_forward_rolling_window_and_accuracy(market, returns_X):
    X = returns_X.iloc[:3000]
    wf = walk_forward_regimes(GaussianHMMRegime(3, n_restarts=1, random_state=0), X,
                              min_train=1500, refit_every=750, window="rolling", train_size=1500)
    assert (wf.refits["train_start"] == X.index[[0, 750]]).all()
    truth = market.regimes.loc[X.index[1500:]].to_numpy()
    assert (wf.labels.iloc[1500:].to_numpy() == truth).mean() >= 0.7  # out of sample
    with pytest.raises(ParameterError, match="window"):
        walk_forward_regimes(GaussianHMMRegime(), X, window="sideways")
