"""Gaussian-emission forward filtering on plain parameters (pandas-free wrappers of the kernels).

Used by the HMM and switching models, by the regime kinds (which store the fitted parameters as
JSON numbers), by the ML regime features and, one bar at a time, by :class:`OnlineRegimeFilter`
(a fitted model's ``online_filter()``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from quantlib.core.regime_filter_nb import filter_step_nb, forward_filter_nb, windowed_filter_nb
from quantlib.errors import ParameterError


def check_transmat(transmat: np.ndarray) -> np.ndarray:
    """``transmat`` as a float array, checked to be a K x K row-stochastic matrix."""
    P = np.asarray(transmat, dtype=float)
    if P.ndim != 2 or P.shape[0] != P.shape[1] or P.shape[0] < 1:
        raise ParameterError(f"transmat: expected a square K x K matrix, got shape {P.shape}")
    if not np.all(np.isfinite(P)) or np.any(P < 0) or not np.allclose(P.sum(axis=1), 1.0):
        raise ParameterError("transmat: expected non-negative rows summing to 1")
    return P


def stationary_distribution(transmat: np.ndarray) -> np.ndarray:
    """Stationary distribution ``pi`` with ``pi @ P = pi`` of a row-stochastic matrix.

    Solved as a linear system (``pi (P - I) = 0`` with ``sum(pi) = 1``) rather than by
    eigenvectors, which is stable for nearly-reducible chains.

    Examples
    --------
    >>> stationary_distribution(np.array([[0.9, 0.1], [0.2, 0.8]])).round(4)
    array([0.6667, 0.3333])
    """
    P = check_transmat(transmat)
    k = P.shape[0]
    A = np.vstack([(P - np.eye(k)).T, np.ones((1, k))])
    b = np.zeros(k + 1)
    b[-1] = 1.0
    pi, *_ = np.linalg.lstsq(A, b, rcond=None)
    pi = np.clip(pi, 0.0, None)
    return pi / pi.sum()


def gaussian_log_emission(X: np.ndarray, means: np.ndarray, covars: np.ndarray) -> np.ndarray:
    """log N(x_t; mean_k, cov_k) for every bar t and regime k, shape (T, K).

    Examples
    --------
    >>> gaussian_log_emission(np.zeros((1, 1)), np.zeros((1, 1)), np.ones((1, 1, 1))).round(4)
    array([[-0.9189]])
    """
    X = np.atleast_2d(np.asarray(X, dtype=float))
    means = np.asarray(means, dtype=float)
    covars = np.asarray(covars, dtype=float)
    n_states, n_features = means.shape
    if X.shape[1] != n_features or covars.shape != (n_states, n_features, n_features):
        raise ParameterError(
            f"emission parameters: X has {X.shape[1]} feature(s), means {means.shape}, "
            f"covars {covars.shape}; expected means (K, d) and covars (K, d, d)"
        )
    out = np.empty((X.shape[0], n_states))
    for k in range(n_states):
        try:
            chol = np.linalg.cholesky(covars[k])
        except np.linalg.LinAlgError:
            raise ParameterError(f"covars[{k}]: not positive definite") from None
        solved = np.linalg.solve(chol, (X - means[k]).T)
        log_det = 2.0 * np.log(np.diag(chol)).sum()
        out[:, k] = -0.5 * ((solved**2).sum(axis=0) + log_det + n_features * np.log(2 * np.pi))
    return out


def filter_gaussian(X: np.ndarray, transmat: np.ndarray, means: np.ndarray, covars: np.ndarray,
                    init_proba: np.ndarray | None = None,
                    window: int | None = None) -> tuple[np.ndarray, float]:
    """Filtered regime probabilities (forward pass only) and the log-likelihood.

    ``init_proba`` defaults to the stationary distribution. With ``window``, each bar's value is
    computed from the last ``window`` bars only (finite memory); the log-likelihood is then NaN.
    """
    transmat = np.ascontiguousarray(transmat, dtype=float)
    init = stationary_distribution(transmat) if init_proba is None else np.asarray(init_proba, float)
    log_em = np.ascontiguousarray(gaussian_log_emission(X, means, covars))
    if window is None:
        return forward_filter_nb(log_em, transmat, init)
    return windowed_filter_nb(log_em, transmat, init, int(window)), float("nan")


class OnlineRegimeFilter:
    """O(K^2)-per-bar filtered regime probabilities for a live feed.

    Parameters
    ----------
    transmat, means, covars : fitted Gaussian HMM parameters (original feature units).
    init_proba : prior of the first bar; defaults to the stationary distribution.

    Examples
    --------
    >>> f = OnlineRegimeFilter([[0.9, 0.1], [0.1, 0.9]], [[0.0], [0.0]], [[[1.0]], [[4.0]]])
    >>> f.update([0.1]).round(3)
    array([0.666, 0.334])
    """

    def __init__(self, transmat: Sequence, means: Sequence, covars: Sequence,
                 init_proba: Sequence | None = None) -> None:
        self.transmat = np.ascontiguousarray(transmat, dtype=float)
        self.means = np.asarray(means, dtype=float)
        self.covars = np.asarray(covars, dtype=float)
        self.init_proba = (stationary_distribution(self.transmat) if init_proba is None
                           else np.asarray(init_proba, dtype=float))
        self.proba: np.ndarray | None = None
        self.loglik = 0.0
        # Precompute inverse Cholesky factors and normalising constants once, so an update is
        # a few K x d products: constant cost per bar whatever the history length.
        n_features = self.means.shape[1]
        gaussian_log_emission(self.means[:1], self.means, self.covars)  # validates shapes/PD
        chols = np.linalg.cholesky(self.covars)
        self._inv_chol = np.linalg.inv(chols)
        self._log_const = -0.5 * (2.0 * np.log(np.diagonal(chols, axis1=1, axis2=2)).sum(axis=1)
                                  + n_features * np.log(2 * np.pi))

    def log_emission(self, x_new: Sequence) -> np.ndarray:
        """log N(x_new; mean_k, cov_k) for each regime k (precomputed factors)."""
        diff = np.asarray(x_new, dtype=float).reshape(1, -1) - self.means  # (K, d)
        solved = np.einsum("kij,kj->ki", self._inv_chol, diff)
        return self._log_const - 0.5 * (solved**2).sum(axis=1)

    def update(self, x_new: Sequence) -> np.ndarray:
        """Fold in one new feature vector and return P(regime_t | x_0..x_t)."""
        log_em = self.log_emission(x_new)
        if self.proba is None:
            # First bar: the prior is the initial distribution itself (no transition), which is
            # the same as stepping from a distribution whose successor is init_proba.
            filtered, step_ll = forward_filter_nb(log_em[None, :], self.transmat, self.init_proba)
            self.proba, ll = filtered[0], step_ll
        else:
            self.proba, ll = filter_step_nb(self.proba, log_em, self.transmat)
        self.loglik += ll
        return self.proba
