"""Observable Markov chain of regimes on quantile bins of causal features.

States are bins of the features (e.g. trailing volatility terciles); the bin edges are learnt in
``fit`` only, so transforming later data never peeks at it. The chain is observed, not hidden:
the state at bar t is known at bar t, so filtered and smoothed probabilities are the same one-hot
vectors and there is nothing to leak.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from quantlib.core.regime_features import digitize_states
from quantlib.core.regime_filter_nb import transition_counts_nb
from quantlib.errors import ParameterError
from quantlib.regime.base import RegimeModel, check_int, check_X
from quantlib.regime.results import (
    RegimeResults,
    expected_durations,
    markov_chi2_test,
    stationary_distribution,
)


class MarkovChainRegime(RegimeModel):
    """Discrete Markov chain on quantile bins of one or more features.

    Parameters
    ----------
    n_bins : bins per feature; the chain has ``n_bins ** n_features`` states.
    quantiles : interior quantile levels of the bin edges (``n_bins - 1`` increasing numbers in
        (0, 1)); default equally spaced. Ignored when ``edges`` is given.
    edges : explicit interior bin edges, one list per feature (e.g. from a previous fit, or to
        use already-discrete states); when None they are learnt from the training data.
    alpha : Laplace (additive) smoothing added to every transition count.

    Attributes
    ----------
    bin_edges_, n_states_, counts_, transmat_, stationary_distribution_, expected_durations_,
    chi2_ (statistic, dof, p-value of the Markov-vs-independence test), n_obs_.

    Examples
    --------
    >>> x = np.array([0.1, 0.1, 0.9, 0.9, 0.9, 0.1, 0.1, 0.9])
    >>> chain = MarkovChainRegime(n_bins=2).fit(x)
    >>> chain.counts_.tolist()
    [[2.0, 2.0], [1.0, 2.0]]
    """

    def __init__(self, n_bins: int = 3, quantiles: list[float] | None = None,
                 edges: list[list[float]] | None = None, alpha: float = 0.0) -> None:
        self.n_bins = n_bins
        self.quantiles = quantiles
        self.edges = edges
        self.alpha = alpha

    def _learn_edges(self, arr: np.ndarray) -> list[np.ndarray]:
        n_bins, d = self.n_bins, arr.shape[1]
        if self.edges is not None:
            edges = [np.asarray(e, dtype=float) for e in self.edges]
            if len(edges) != d or any(e.shape != (n_bins - 1,) or np.any(np.diff(e) <= 0)
                                      for e in edges):
                raise ParameterError(f"parameter 'edges': expected {d} increasing list(s) of "
                                     f"{n_bins - 1} edge(s), got {self.edges!r}")
            return edges
        if self.quantiles is None:
            levels = np.arange(1, n_bins) / n_bins
        else:
            levels = np.asarray(self.quantiles, dtype=float)
            if (levels.shape != (n_bins - 1,) or np.any(levels <= 0) or np.any(levels >= 1)
                    or np.any(np.diff(levels) <= 0)):
                raise ParameterError(f"parameter 'quantiles': expected {n_bins - 1} increasing "
                                     f"levels in (0, 1), got {self.quantiles!r}")
        edges = [np.quantile(arr[:, j], levels) for j in range(d)]
        for j, e in enumerate(edges):
            if np.any(np.diff(e) <= 0):
                raise ParameterError(f"feature column {j}: quantile bin edges {e.tolist()} are "
                                     "not distinct (too many ties); use fewer bins")
        return edges

    def fit(self, X: Any, y: Any = None) -> MarkovChainRegime:
        """Learn bin edges, count transitions and estimate the transition matrix."""
        arr = check_X(X)
        n_bins = check_int(self.n_bins, "n_bins", 2)
        if isinstance(self.alpha, bool) or not isinstance(self.alpha, int | float) or self.alpha < 0:
            raise ParameterError(f"parameter 'alpha': expected a number >= 0, got {self.alpha!r}")
        if arr.shape[0] < 2:
            raise ParameterError("X: at least 2 rows are needed to count transitions")
        self.bin_edges_ = self._learn_edges(arr)
        self.n_features_in_ = arr.shape[1]
        self.n_states_ = self.n_regimes_ = n_bins ** arr.shape[1]
        states = digitize_states(arr, self.bin_edges_, n_bins)
        self.counts_ = transition_counts_nb(states, self.n_states_)
        smoothed = self.counts_ + float(self.alpha)
        rows = smoothed.sum(axis=1, keepdims=True)
        # A never-visited state (no counts, no smoothing) gets a uniform row so the matrix stays
        # stochastic; summary() flags it.
        self.transmat_ = np.where(rows > 0, smoothed / np.where(rows > 0, rows, 1.0),
                                  1.0 / self.n_states_)
        self.stationary_distribution_ = stationary_distribution(self.transmat_)
        self.expected_durations_ = expected_durations(self.transmat_)
        self.chi2_ = markov_chi2_test(self.counts_)
        self.n_obs_ = arr.shape[0]
        return self

    def transform(self, X: Any) -> pd.Series:
        """State index per bar using the edges learnt in ``fit``."""
        self._check_fitted()
        arr = check_X(X, n_features=self.n_features_in_)
        states = digitize_states(arr, self.bin_edges_, self.n_bins)
        return pd.Series(states, index=self._index(X, len(states)), name="regime")

    def predict(self, X: Any) -> pd.Series:
        """Observed state per bar (causal: bar t uses only its own feature row)."""
        return self.transform(X)

    def predict_proba(self, X: Any, smoothed: bool = False) -> pd.DataFrame:
        """One-hot state probabilities; the chain is observed, so ``smoothed`` changes nothing."""
        states = self.transform(X).to_numpy()
        return self._proba_frame(np.eye(self.n_states_)[states], X)

    def update(self, proba_prev: np.ndarray, x_new: Any) -> np.ndarray:
        """O(1) online step: the new bar's state is observed, so return its one-hot vector."""
        self._check_fitted()
        arr = check_X(np.atleast_2d(np.asarray(x_new, float)), "x_new", self.n_features_in_)
        return np.eye(self.n_states_)[digitize_states(arr, self.bin_edges_, self.n_bins)[0]]

    def to_params(self) -> dict[str, Any]:
        """Fitted bin edges and transition matrix as plain JSON lists."""
        self._check_fitted()
        return {"edges": [e.tolist() for e in self.bin_edges_], "transmat": self.transmat_.tolist()}

    def summary(self) -> RegimeResults:
        """Statsmodels-style results including the chi-square Markov-property test."""
        self._check_fitted()
        stat, dof, p_value = self.chi2_
        table = pd.DataFrame({"visits": self.counts_.sum(axis=1)}, index=pd.RangeIndex(
            self.n_states_, name="state"))
        edges = "; ".join(f"feature {j}: {np.round(e, 6).tolist()}"
                          for j, e in enumerate(self.bin_edges_))
        verdict = ("reject independence: the current state predicts the next one"
                   if p_value < 0.05 else "cannot reject independence at 5%")
        test = (f"H0: next state independent of current state (chi-square on transition counts)\n"
                f"chi2 = {stat:.3f}, dof = {dof}, p-value = {p_value:.4g} -> {verdict}")
        header = [("Bins per feature", self.n_bins), ("Laplace alpha", self.alpha),
                  ("Bin edges", edges)]
        return RegimeResults("MarkovChainRegime", self.n_states_, self.n_obs_, self.transmat_,
                             table, extra={"header": header,
                                           "sections": [("Markov property test", test)]})
