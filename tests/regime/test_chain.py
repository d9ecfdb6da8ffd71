"""MarkovChainRegime: counts by hand, fit-only bin edges, ground truth, summary test."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantlib.errors import DataError, NotFittedError, ParameterError
from quantlib.regime import MarkovChainRegime, regime_features


def test_counts_smoothing_and_hand_built_matrix():
    x = np.array([0.1, 0.1, 0.9, 0.9, 0.9, 0.1, 0.1, 0.9])  # states 0 0 1 1 1 0 0 1
    chain = MarkovChainRegime(n_bins=2).fit(x)
    np.testing.assert_array_equal(chain.counts_, [[2, 2], [1, 2]])
    np.testing.assert_allclose(chain.transmat_, [[0.5, 0.5], [1 / 3, 2 / 3]])
    smooth = MarkovChainRegime(n_bins=2, alpha=1.0).fit(x)
    np.testing.assert_allclose(smooth.transmat_, [[3 / 6, 3 / 6], [2 / 5, 3 / 5]])
    np.testing.assert_allclose(chain.expected_durations_, [2.0, 3.0])
    np.testing.assert_allclose(chain.forecast([1.0, 0.0], 2)[1],
                               np.array([1.0, 0.0]) @ np.linalg.matrix_power(chain.transmat_, 2))


def test_bin_edges_learnt_in_fit_only():
    rng = np.random.default_rng(0)
    train = pd.Series(rng.normal(size=500))
    chain = MarkovChainRegime(n_bins=4).fit(train)
    np.testing.assert_allclose(chain.bin_edges_[0], np.quantile(train, [0.25, 0.5, 0.75]))
    later = pd.Series(rng.normal(5.0, 1.0, size=50))  # shifted data must not move the edges
    states = chain.transform(later)
    np.testing.assert_array_equal(states, np.searchsorted(chain.bin_edges_[0], later, "right"))
    assert (states == 3).mean() > 0.9
    # Causal: the state of a bar does not depend on later bars.
    np.testing.assert_array_equal(chain.predict(later.iloc[:20]), states.iloc[:20])


def test_two_features_give_product_states():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 2))
    chain = MarkovChainRegime(n_bins=2).fit(X)
    states = chain.transform(X).to_numpy()
    expected = (X[:, 0] > chain.bin_edges_[0][0]) * 2 + (X[:, 1] > chain.bin_edges_[1][0])
    np.testing.assert_array_equal(states, expected)
    assert chain.n_states_ == 4
    np.testing.assert_array_equal(chain.predict_proba(X).to_numpy().argmax(1), states)


def test_ground_truth_transition_matrix_from_true_states(market):
    # The count estimator on the true state path: MLE error ~ sqrt(p(1-p)/n_i) <= ~0.006 here.
    chain = MarkovChainRegime(n_bins=3, edges=[[0.5, 1.5]]).fit(market.regimes)
    assert np.abs(chain.transmat_ - market.transition_matrix).max() < 0.02


def test_ground_truth_volatility_bins(market):
    # Terciles at the true regime shares of trailing 12-bar volatility: stated accuracy >= 70%,
    # diagonal (persistence) within 0.07 of the truth (rolling vol lags switches by a few bars).
    X = regime_features(market.ohlcv, ["volatility"], vol_window=12)
    truth = market.regimes.loc[X.index].to_numpy()
    shares = np.cumsum(np.bincount(market.regimes, minlength=3))[:-1] / len(market.regimes)
    chain = MarkovChainRegime(n_bins=3, quantiles=shares.tolist()).fit(X)
    assert (chain.predict(X).to_numpy() == truth).mean() >= 0.70
    assert np.abs(np.diag(chain.transmat_) - np.diag(market.transition_matrix)).max() < 0.07


def test_summary_reports_markov_test(market):
    X = regime_features(market.ohlcv, ["volatility"], vol_window=12)
    chain = MarkovChainRegime(n_bins=3).fit(X)
    text = chain.summary().summary()
    assert "Markov property test" in text and "reject independence" in text
    assert chain.chi2_[2] < 1e-10 and chain.chi2_[1] == 4
    # i.i.d. data: independence is not rejected (at 1% for this seed).
    iid = MarkovChainRegime(n_bins=3).fit(np.random.default_rng(5).normal(size=3000))
    assert iid.chi2_[2] > 0.01


def test_errors_name_the_problem():
    with pytest.raises(NotFittedError, match="fit"):
        MarkovChainRegime().transform(np.ones(3))
    with pytest.raises(ParameterError, match="n_bins"):
        MarkovChainRegime(n_bins=1).fit(np.arange(10.0))
    with pytest.raises(ParameterError, match="alpha"):
        MarkovChainRegime(alpha=-1).fit(np.arange(10.0))
    with pytest.raises(ParameterError, match="quantiles"):
        MarkovChainRegime(n_bins=3, quantiles=[0.7, 0.2]).fit(np.arange(10.0))
    with pytest.raises(ParameterError, match="not distinct"):
        MarkovChainRegime(n_bins=3).fit(np.zeros(10))
    with pytest.raises(DataError, match="row 2"):
        MarkovChainRegime().fit(np.array([1.0, 2.0, np.nan, 3.0]))
