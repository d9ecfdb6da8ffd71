"""GaussianHMMRegime: causal filtering (truncation), hmmlearn cross-checks, ground truth, labels."""

from __future__ import annotations

import numpy as np
import pytest

from quantlib.errors import DataError, NotFittedError, ParameterError
from quantlib.regime import GaussianHMMRegime


def test_filtered_proba_unchanged_by_truncation(hmm3, returns_X):
    full = hmm3.predict_proba(returns_X)
    for t in (50, 1234, 4000):
        part = hmm3.predict_proba(returns_X.iloc[: t + 1])
        np.testing.assert_allclose(part.to_numpy(), full.to_numpy()[: t + 1], atol=1e-12)
    assert list(full.columns) == ["regime_0", "regime_1", "regime_2"]


def test_smoothed_proba_uses_the_future(hmm3, returns_X):
    # The reason smoothed values are banned from trading: they change when the future is cut.
    t = 3000
    smooth_full = hmm3.predict_proba(returns_X, smoothed=True).to_numpy()[t]
    smooth_cut = hmm3.predict_proba(returns_X.iloc[: t + 1], smoothed=True).to_numpy()[t]
    assert np.abs(smooth_full - smooth_cut).max() > 1e-6
    # At the last bar of a sample smoothing has no future: it equals the filter (with hmmlearn's
    # own start probabilities).
    fitted_init = GaussianHMMRegime(**{**hmm3.get_params(), "init": "fitted"})
    for attr in ("model_", "order_", "center_", "scale_", "startprob_", "transmat_", "means_",
                 "covars_", "n_features_in_"):
        setattr(fitted_init, attr, getattr(hmm3, attr))
    last_smooth = fitted_init.predict_proba(returns_X.iloc[:500], smoothed=True).to_numpy()[-1]
    last_filter = fitted_init.predict_proba(returns_X.iloc[:500]).to_numpy()[-1]
    np.testing.assert_allclose(last_filter, last_smooth, atol=1e-8)
    # And the forward log-likelihood equals hmmlearn's score (mapped back to original units).
    z = (returns_X.to_numpy() - hmm3.center_) / hmm3.scale_
    ref = hmm3.model_.score(z) - len(z) * np.log(hmm3.scale_).sum()
    assert fitted_init.score(returns_X) == pytest.approx(ref, abs=1e-6)
    assert hmm3.loglik_ == pytest.approx(ref, abs=1e-6)


def test_bic_parameter_count_matches_hmmlearn(hmm3, returns_X):
    z = (returns_X.to_numpy() - hmm3.center_) / hmm3.scale_
    ll = hmm3.model_.score(z)
    # hmmlearn's bic() counts free parameters independently of our formula.
    assert hmm3.model_.bic(z) == pytest.approx(-2 * ll + hmm3.n_params_ * np.log(len(z)))
    assert hmm3.bic_ == pytest.approx(-2 * hmm3.loglik_ + hmm3.n_params_ * np.log(len(z)))


def test_ground_truth_recovery(market, hmm3, returns_X):
    # Stated tolerance: every transition probability within 0.04 of the truth; per-regime vol
    # within 15%; filtered labels >= 80% accurate (smoothed would be higher but is not causal).
    assert np.abs(hmm3.transmat_ - market.transition_matrix).max() < 0.04
    vol = np.sqrt(hmm3.covars_[:, 0, 0])
    np.testing.assert_allclose(vol, market.regime_vol, rtol=0.15)
    truth = market.regimes.loc[returns_X.index].to_numpy()
    assert (hmm3.predict(returns_X).to_numpy() == truth).mean() >= 0.80


def test_labels_stable_across_seeds(returns_X):
    X = returns_X.iloc[:3000]
    a = GaussianHMMRegime(3, n_restarts=2, random_state=1).fit(X)
    b = GaussianHMMRegime(3, n_restarts=2, random_state=7).fit(X)
    assert not np.array_equal(a.restart_logliks_, b.restart_logliks_)  # really different starts
    assert (a.predict(X).to_numpy() == b.predict(X).to_numpy()).mean() > 0.98
    assert np.all(np.diff(a.covars_[:, 0, 0]) > 0)  # canonical order: calm -> volatile


def test_restarts_keep_best_loglik(returns_X):
    X = returns_X.iloc[:2000]
    m = GaussianHMMRegime(3, n_restarts=4, random_state=3).fit(X)
    z = (X.to_numpy() - m.center_) / m.scale_
    assert m.model_.score(z) == pytest.approx(m.restart_logliks_.max())


def test_online_update_matches_batch(hmm3, returns_X):
    x = returns_X.to_numpy()[:300]
    batch = hmm3.predict_proba(x).to_numpy()
    proba = batch[99]
    for t in range(100, 300):
        proba = hmm3.update(proba, x[t])
        np.testing.assert_allclose(proba, batch[t], atol=1e-12)
    params = hmm3.to_params()
    assert isinstance(params["transmat"], list) and isinstance(params["covars"][0][0][0], float)


def test_summary_and_errors(hmm3, returns_X):
    text = hmm3.summary().summary()
    assert "GaussianHMMRegime" in text and "BIC" in text and "expected_duration" in text
    with pytest.raises(NotFittedError):
        GaussianHMMRegime().predict_proba(returns_X)
    with pytest.raises(ParameterError, match="covariance_type"):
        GaussianHMMRegime(covariance_type="bogus").fit(returns_X)
    with pytest.raises(ParameterError, match="n_regimes"):
        GaussianHMMRegime(n_regimes=0).fit(returns_X)
    with pytest.raises(DataError, match="feature"):
        hmm3.predict_proba(np.ones((5, 2)))
