"""Forward-filter kernels against brute-force enumeration of hidden paths and against each other."""

from __future__ import annotations

import itertools

import numpy as np

from quantlib.core.regime_filter_nb import (
    filter_step_nb,
    forward_filter_nb,
    transition_counts_nb,
    windowed_filter_nb,
)
from quantlib.regime import OnlineRegimeFilter, filter_gaussian, gaussian_log_emission

P = np.array([[0.9, 0.1], [0.3, 0.7]])
INIT = np.array([0.6, 0.4])
MEANS = np.array([[0.0], [0.5]])
COVARS = np.array([[[1.0]], [[4.0]]])


def _brute_force(x, t):
    """P(s_t | x_0..x_t) by summing the joint over every hidden path of length t+1."""
    em = np.exp(gaussian_log_emission(x[: t + 1, None], MEANS, COVARS))
    post = np.zeros(2)
    for path in itertools.product(range(2), repeat=t + 1):
        w = INIT[path[0]] * em[0, path[0]]
        for s in range(1, t + 1):
            w *= P[path[s - 1], path[s]] * em[s, path[s]]
        post[path[-1]] += w
    return post / post.sum(), np.log(post.sum())


def test_forward_filter_equals_brute_force():
    x = np.array([0.1, -1.2, 3.0, 0.4, 2.2, -0.3, 0.0])
    filtered, loglik = forward_filter_nb(gaussian_log_emission(x[:, None], MEANS, COVARS), P, INIT)
    for t in range(len(x)):
        ref, ref_ll = _brute_force(x, t)
        np.testing.assert_allclose(filtered[t], ref, rtol=1e-12)
    assert abs(loglik - ref_ll) < 1e-10


def test_scipy_density():
    from scipy.stats import multivariate_normal

    rng = np.random.default_rng(1)
    X = rng.normal(size=(5, 2))
    cov = np.array([[[1.0, 0.3], [0.3, 2.0]], [[0.5, 0.0], [0.0, 0.2]]])
    means = np.array([[0.0, 1.0], [-1.0, 0.5]])
    out = gaussian_log_emission(X, means, cov)
    for k in range(2):
        np.testing.assert_allclose(out[:, k], multivariate_normal(means[k], cov[k]).logpdf(X))


def test_step_and_online_filter_reproduce_batch():
    rng = np.random.default_rng(2)
    x = rng.normal(0, 1.5, size=(200, 1))
    batch, loglik = filter_gaussian(x, P, MEANS, COVARS, INIT)
    online = OnlineRegimeFilter(P, MEANS, COVARS, INIT)
    for t in range(200):
        np.testing.assert_allclose(online.update(x[t]), batch[t], atol=1e-12)
    assert abs(online.loglik - loglik) < 1e-9
    log_em = gaussian_log_emission(x, MEANS, COVARS)
    proba, _ = filter_step_nb(batch[10], log_em[11], P)
    np.testing.assert_allclose(proba, batch[11], atol=1e-12)


def test_windowed_filter_is_finite_memory():
    rng = np.random.default_rng(3)
    log_em = gaussian_log_emission(rng.normal(0, 1.5, size=(120, 1)), MEANS, COVARS)
    window = 30
    out = windowed_filter_nb(log_em, P, INIT, window)
    for t in (29, 60, 119):
        ref, _ = forward_filter_nb(log_em[t - window + 1 : t + 1].copy(), P, INIT)
        np.testing.assert_allclose(out[t], ref[-1], atol=1e-12)
    # With the window covering all history it is the ordinary filter.
    full, _ = forward_filter_nb(log_em, P, INIT)
    np.testing.assert_allclose(windowed_filter_nb(log_em, P, INIT, 500), full, atol=1e-12)


def test_transition_counts_by_hand():
    counts = transition_counts_nb(np.array([0, 0, 1, 1, 0, -1, 1]), 2)
    np.testing.assert_array_equal(counts, [[1, 1], [1, 1]])
