"""Numba kernels for hidden-Markov forward filtering (numpy/numba only).

All kernels work on *log* emission densities so tiny hourly-return variances do not underflow,
and normalise every step (the "scaled" forward algorithm), which makes the per-bar update O(K^2)
and independent of history length: exactly what the live runner needs.
"""

from __future__ import annotations

import numpy as np

from quantlib.jit import njit


@njit(cache=True)
def filter_step_nb(proba_prev, log_emission, transmat):
    """One forward-filter step; returns (filtered proba at t, log p(x_t | x_<t)).

    ``proba_prev`` is P(s_{t-1} | x_<=t-1); ``transmat[i, j]`` = P(s_t = j | s_{t-1} = i).
    """
    n_states = proba_prev.shape[0]
    predicted = np.zeros(n_states)
    for i in range(n_states):
        for j in range(n_states):
            predicted[j] += proba_prev[i] * transmat[i, j]
    shift = np.max(log_emission)
    out = np.empty(n_states)
    total = 0.0
    for j in range(n_states):
        out[j] = predicted[j] * np.exp(log_emission[j] - shift)
        total += out[j]
    if total <= 0.0 or not np.isfinite(total):
        # Every state gives the bar ~zero density (an extreme outlier): keep the prediction
        # rather than dividing by zero.
        return predicted / np.sum(predicted), -np.inf
    for j in range(n_states):
        out[j] /= total
    return out, np.log(total) + shift


@njit(cache=True)
def forward_filter_nb(log_emission, transmat, init_proba):
    """Filtered probabilities P(s_t | x_0..x_t) for every t and the total log-likelihood.

    ``init_proba`` is the state distribution *before* the first bar's transition is applied
    at t=0 it is used directly as the prior of s_0 (no transition).
    """
    n_bars, n_states = log_emission.shape
    filtered = np.empty((n_bars, n_states))
    loglik = 0.0
    if n_bars == 0:
        return filtered, loglik
    # t = 0: prior is init_proba itself.
    shift = np.max(log_emission[0])
    total = 0.0
    for j in range(n_states):
        filtered[0, j] = init_proba[j] * np.exp(log_emission[0, j] - shift)
        total += filtered[0, j]
    for j in range(n_states):
        filtered[0, j] /= total
    loglik += np.log(total) + shift
    for t in range(1, n_bars):
        row, step_ll = filter_step_nb(filtered[t - 1], log_emission[t], transmat)
        filtered[t] = row
        loglik += step_ll
    return filtered, loglik


@njit(cache=True, aot="f8[:, :](f8[:, :], f8[:, :], f8[:], i8)")
def windowed_filter_nb(log_emission, transmat, init_proba, window):
    """Finite-memory filter: at bar t, run the filter over bars t-window+1..t from ``init_proba``.

    The value at t depends only on the last ``window`` bars, so a live runner holding a bounded
    window reproduces it exactly. Bars with fewer than ``window`` bars of history use what exists.
    """
    n_bars, n_states = log_emission.shape
    out = np.empty((n_bars, n_states))
    for t in range(n_bars):
        start = max(0, t - window + 1)
        proba = init_proba.copy()
        # First bar of the window: prior is init_proba (no transition), as in forward_filter_nb.
        shift = np.max(log_emission[start])
        total = 0.0
        for j in range(n_states):
            proba[j] = init_proba[j] * np.exp(log_emission[start, j] - shift)
            total += proba[j]
        proba /= total
        for s in range(start + 1, t + 1):
            proba, _ = filter_step_nb(proba, log_emission[s], transmat)
        out[t] = proba
    return out


@njit(cache=True)
def transition_counts_nb(states, n_states):
    """Counts[i, j] of consecutive pairs (s_{t-1} = i, s_t = j); negative states are skipped."""
    counts = np.zeros((n_states, n_states))
    for t in range(1, states.shape[0]):
        a = states[t - 1]
        b = states[t]
        if a >= 0 and b >= 0:
            counts[a, b] += 1.0
    return counts
