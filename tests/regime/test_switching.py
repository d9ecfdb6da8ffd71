"""MarkovSwitchingRegime (statsmodels): filtered = Hamilton filter, truncation, ground truth.

statsmodels fits are slow, so one small (1,500-bar) fit is shared by the tests.
"""

from __future__ import annotations

import numpy as np
import pytest

from quantlib.data import synthetic_ohlcv
from quantlib.errors import DataError, NotFittedError, ParameterError
from quantlib.regime import MarkovSwitchingRegime, filter_gaussian, regime_features
from tests.regime.conftest import STICKY_MARKET


@pytest.fixture(scope="module")
def small():
    market = synthetic_ohlcv(1500, seed=2, **STICKY_MARKET)
    X = regime_features(market.ohlcv, ["returns"])
    model = MarkovSwitchingRegime(n_regimes=3, n_restarts=2, random_state=0).fit(X)
    return market, X, model


def test_filtered_matches_independent_forward_filter(small):
    _, X, model = small
    proba = model.predict_proba(X).to_numpy()
    # Our numba kernel on the mapped-back parameters reproduces statsmodels' Hamilton filter.
    ours, loglik = filter_gaussian(X.to_numpy(), model.transmat_, model.means_, model.covars_)
    np.testing.assert_allclose(proba, ours, atol=1e-9)
    assert loglik == pytest.approx(model.loglik_, abs=1e-6)
    assert model.bic_ == pytest.approx(-2 * model.loglik_ + model.n_params_ * np.log(len(X)))


def test_truncation_and_online_update(small):
    _, X, model = small
    full = model.predict_proba(X).to_numpy()
    for t in (100, 900):
        np.testing.assert_allclose(model.predict_proba(X.iloc[: t + 1]).to_numpy(),
                                   full[: t + 1], atol=1e-10)
    proba = full[899]
    for t in range(900, 950):
        proba = model.update(proba, X.to_numpy()[t])
        np.testing.assert_allclose(proba, full[t], atol=1e-10)
    smooth = model.predict_proba(X, smoothed=True).to_numpy()
    np.testing.assert_allclose(smooth[-1], full[-1], atol=1e-8)  # no future at the last bar
    assert np.abs(smooth[:-50] - full[:-50]).max() > 0.1


def test_ground_truth_recovery(small):
    # Stated for 1,500 bars (few visits to the rare regime): transition probabilities within
    # 0.07, per-regime vol within 50% (the calm and middle regimes within 15%), filtered labels
    # >= 80% accurate.
    market, X, model = small
    assert np.abs(model.transmat_ - market.transition_matrix).max() < 0.07
    vol = np.sqrt(model.covars_[:, 0, 0])
    np.testing.assert_allclose(vol[:2], market.regime_vol[:2], rtol=0.15)
    np.testing.assert_allclose(vol, market.regime_vol, rtol=0.5)
    truth = market.regimes.loc[X.index].to_numpy()
    assert (model.predict(X).to_numpy() == truth).mean() >= 0.80
    assert np.all(np.diff(model.covars_[:, 0, 0]) > 0)


def test_summary_and_errors(small):
    _, X, model = small
    assert "MarkovSwitchingRegime" in model.summary().summary()
    with pytest.raises(NotFittedError):
        MarkovSwitchingRegime().predict_proba(X)
    with pytest.raises(ParameterError, match="n_regimes"):
        MarkovSwitchingRegime(n_regimes=1).fit(X)
    with pytest.raises(DataError, match="feature"):
        MarkovSwitchingRegime().fit(np.ones((50, 2)))
