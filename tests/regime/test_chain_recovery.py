"""MarkovChainRegime on synthetic prices: the whole transition matrix against transitions counted
by hand from the learnt bin edges, and against the true regime chain when bins map (almost)
one-to-one to regimes, or through the per-bar confusion matrix when they do not.
"""

from __future__ import annotations

import numpy as np
import pytest

from quantlib.data import synthetic_ohlcv
from quantlib.regime import MarkovChainRegime, regime_features
from tests.regime.conftest import STICKY_MARKET

# Asymmetric (cyclic) truth: calm -> middle -> volatile -> calm. Its transpose is off by 0.08 in
# six entries, so a from/to mix-up cannot hide inside the tolerances below. Doubly stochastic, so
# each regime holds ~1/3 of the bars.
CYCLIC_P = np.array([[0.92, 0.08, 0.00],
                     [0.00, 0.92, 0.08],
                     [0.08, 0.00, 0.92]])


def _bins(x, edges):
    """Bin of each value: how many interior edges are <= it (a value on an edge goes up)."""
    return (x[:, None] >= np.asarray(edges)[None, :]).sum(axis=1)


def _hand_counts(states, k):
    counts = np.zeros((k, k))
    np.add.at(counts, (states[:-1], states[1:]), 1.0)
    return counts


@pytest.fixture(scope="module")
def two_features():
    market = synthetic_ohlcv(3000, seed=7, **STICKY_MARKET)
    return regime_features(market.ohlcv, ["returns", "volatility"], vol_window=12)


def test_whole_matrix_equals_hand_counts_from_learnt_edges(two_features):
    X = two_features
    chain = MarkovChainRegime(n_bins=3).fit(X)
    values = X.to_numpy()
    for j in range(2):  # edges are the training terciles of each feature
        np.testing.assert_allclose(chain.bin_edges_[j], np.quantile(values[:, j], [1 / 3, 2 / 3]))
    # State = 3 * bin(returns) + bin(volatility): column 0 is the most significant digit.
    states = 3 * _bins(values[:, 0], chain.bin_edges_[0]) + _bins(values[:, 1], chain.bin_edges_[1])
    np.testing.assert_array_equal(chain.transform(X).to_numpy(), states)
    counts = _hand_counts(states, 9)
    assert counts.sum() == len(X) - 1
    # The matrix is far from trivial: most of the 81 transitions occur and it is not symmetric,
    # so a swapped from/to or digit order would show.
    assert (counts > 0).sum() > 60 and not np.allclose(counts, counts.T)
    np.testing.assert_array_equal(chain.counts_, counts)
    np.testing.assert_allclose(chain.transmat_, counts / counts.sum(axis=1, keepdims=True),
                               rtol=1e-12)
    # Laplace smoothing adds alpha to every one of the 9 cells of a row.
    smooth = MarkovChainRegime(n_bins=3, alpha=0.5).fit(X)
    np.testing.assert_allclose(smooth.transmat_,
                               (counts + 0.5) / (counts.sum(axis=1, keepdims=True) + 9 * 0.5),
                               rtol=1e-12)
    pi = chain.stationary_distribution_  # of the whole fitted matrix: pi P = pi
    assert pi.sum() == pytest.approx(1.0) and np.all(pi > 0)
    np.testing.assert_allclose(pi @ chain.transmat_, pi, atol=1e-12)


def test_later_data_is_binned_with_the_training_edges(two_features):
    X = two_features
    train, later = X.iloc[:2000], X.iloc[2000:]
    chain = MarkovChainRegime(n_bins=3).fit(train)
    later_vals = later.to_numpy()
    # The later block's own terciles differ from the training edges, so relearning would show.
    assert not np.allclose(np.quantile(later_vals[:, 1], [1 / 3, 2 / 3]), chain.bin_edges_[1])
    expected = 3 * _bins(later_vals[:, 0], chain.bin_edges_[0]) \
        + _bins(later_vals[:, 1], chain.bin_edges_[1])
    np.testing.assert_array_equal(chain.transform(later).to_numpy(), expected)
    # counts_ come from the training rows only.
    assert chain.counts_.sum() == len(train) - 1


def _range_chain_at_true_shares(seed: int, hourly_vol: list[float], tail_df: float):
    """20,000 bars of the cyclic 3-regime market; its range feature, true regimes, and a
    3-bin chain fitted with bin edges at the true regime shares."""
    market = synthetic_ohlcv(20000, seed=seed, transition_matrix=CYCLIC_P,
                             hourly_vol=np.array(hourly_vol), hourly_drift=np.zeros(3),
                             tail_df=tail_df)
    X = regime_features(market.ohlcv, ["range"])
    truth = market.regimes.loc[X.index].to_numpy()
    shares = np.cumsum(np.bincount(truth, minlength=3))[:-1] / len(truth)
    return X, truth, MarkovChainRegime(n_bins=3, quantiles=shares.tolist()).fit(X)


def test_one_to_one_bins_recover_the_true_matrix():
    # Near-Gaussian shocks and 10x volatility steps: a bar's high/low range tells its regime
    # (stated accuracy >= 99.5%). With terciles at the true regime shares, the binned chain IS the
    # regime chain up to sampling error: ~6,700 visits per regime give a standard error
    # sqrt(0.08 * 0.92 / 6700) ~ 0.0033 per entry, 4 SE ~ 0.013, plus <= ~0.005 from the
    # misbinned bars (each adds at most two spurious transitions): tolerance 0.02.
    X, truth, chain = _range_chain_at_true_shares(1, [0.001, 0.01, 0.1], tail_df=200.0)
    states = chain.predict(X).to_numpy()
    assert (states == truth).mean() >= 0.995
    assert np.abs(chain.transmat_ - CYCLIC_P).max() < 0.02
    assert np.abs(chain.transmat_ - CYCLIC_P.T).max() > 0.06  # the test can tell P from P.T


def test_overlapping_bins_match_the_truth_seen_through_the_confusion_matrix():
    # Default fat tails (t, 4 dof) and 5x volatility steps: ranges overlap, ~5% of bars land in
    # a neighbouring bin and every such bar adds two spurious transitions, so the binned matrix is
    # NOT the true one (off by > 0.05). But a bar's range depends only on its own regime and
    # shocks, so given the true path the expected binned counts are M' C M, with C the true
    # transition counts and M[i, b] = P(bin b | regime i) (measured here). Tolerance 0.015: the
    # ~700 spurious transitions per row fluctuate by ~sqrt(700) / 6700 ~ 0.004 (about 3.5 SE).
    X, truth, chain = _range_chain_at_true_shares(2, [0.002, 0.01, 0.05], tail_df=4.0)
    states = _bins(X.to_numpy()[:, 0], chain.bin_edges_[0])
    np.testing.assert_array_equal(chain.predict(X).to_numpy(), states)
    assert 0.90 <= (states == truth).mean() <= 0.98
    assert np.abs(chain.transmat_ - CYCLIC_P).max() > 0.05
    confusion = np.zeros((3, 3))
    np.add.at(confusion, (truth, states), 1.0)
    confusion /= confusion.sum(axis=1, keepdims=True)
    expected = confusion.T @ _hand_counts(truth, 3) @ confusion
    expected /= expected.sum(axis=1, keepdims=True)
    assert np.abs(chain.transmat_ - expected).max() < 0.015
