"""Chain statistics helpers against independent computations (scipy, matrix powers, closed form)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chi2_contingency

from quantlib.errors import ParameterError
from quantlib.regime import (
    expected_durations,
    forecast_proba,
    markov_chi2_test,
    stationary_distribution,
)

P = np.array([[0.9, 0.08, 0.02], [0.1, 0.8, 0.1], [0.05, 0.25, 0.7]])


def test_stationary_is_left_eigenvector_and_limit_of_powers():
    pi = stationary_distribution(P)
    np.testing.assert_allclose(pi @ P, pi, atol=1e-12)
    np.testing.assert_allclose(np.linalg.matrix_power(P, 500)[0], pi, atol=1e-10)


def test_two_state_closed_form():
    a, b = 0.1, 0.3
    pi = stationary_distribution(np.array([[1 - a, a], [b, 1 - b]]))
    np.testing.assert_allclose(pi, [b / (a + b), a / (a + b)])


def test_expected_durations_match_simulated_run_lengths():
    durations = expected_durations(P)
    np.testing.assert_allclose(durations, 1 / (1 - np.diag(P)))
    rng = np.random.default_rng(0)
    runs = []
    for _ in range(4000):  # geometric run length in state 0
        n = 1
        while rng.random() < P[0, 0]:
            n += 1
        runs.append(n)
    assert abs(np.mean(runs) - durations[0]) < 0.5  # 10 expected; std err ~0.15


def test_forecast_matches_matrix_power():
    start = np.array([0.2, 0.5, 0.3])
    out = forecast_proba(P, start, 5)
    for n in range(1, 6):
        np.testing.assert_allclose(out[n - 1], start @ np.linalg.matrix_power(P, n))
    with pytest.raises(ParameterError, match="n_steps"):
        forecast_proba(P, start, 0)
    with pytest.raises(ParameterError, match="transmat"):
        forecast_proba(np.array([[0.5, 0.6], [0.5, 0.5]]), np.array([1.0, 0.0]), 1)


def test_chi2_matches_scipy_contingency():
    counts = np.array([[50, 10, 3], [8, 40, 9], [2, 11, 30]])
    stat, dof, p = markov_chi2_test(counts)
    ref = chi2_contingency(counts, correction=False)
    assert stat == pytest.approx(ref.statistic)
    assert dof == ref.dof
    assert p == pytest.approx(ref.pvalue)


def test_chi2_drops_unvisited_states_and_accepts_independence():
    counts = np.array([[20, 20, 0], [20, 20, 0], [0, 0, 0]])
    stat, dof, p = markov_chi2_test(counts)
    assert (stat, dof, p) == (0.0, 1, 1.0)
