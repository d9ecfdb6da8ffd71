"""Results objects for regime models, with a statsmodels-style ``summary()``.

The helpers here are shared by every model: stationary distribution, expected durations and the
chi-square test of the Markov property. They take plain numpy arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

import numpy as np

from quantlib.core.regime_filtering import check_transmat, stationary_distribution
from quantlib.errors import ParameterError


def expected_durations(transmat: np.ndarray) -> np.ndarray:
    """Expected bars spent in each state per visit: ``1 / (1 - P[i, i])`` (inf for absorbing).

    Examples
    --------
    >>> expected_durations(np.array([[0.9, 0.1], [0.5, 0.5]]))
    array([10.,  2.])
    """
    P = check_transmat(transmat)
    stay = np.diag(P)
    with np.errstate(divide="ignore"):
        return np.where(stay < 1.0, 1.0 / (1.0 - stay), np.inf)


def forecast_proba(transmat: np.ndarray, proba: np.ndarray, n_steps: int) -> np.ndarray:
    """State probabilities ``n_steps`` ahead: ``proba @ P**n`` (rows for steps 1..n).

    Examples
    --------
    >>> forecast_proba(np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([1.0, 0.0]), 2).round(3)
    array([[0.9 , 0.1 ],
           [0.83, 0.17]])
    """
    P = check_transmat(transmat)
    if isinstance(n_steps, bool) or not isinstance(n_steps, int | np.integer) or n_steps < 1:
        raise ParameterError(f"n_steps: expected an integer >= 1, got {n_steps!r}")
    current = np.asarray(proba, dtype=float)
    if current.shape != (P.shape[0],) or abs(current.sum() - 1.0) > 1e-6:
        raise ParameterError(
            f"proba: expected a probability vector of length {P.shape[0]}, got {proba!r}"
        )
    out = np.empty((int(n_steps), P.shape[0]))
    for step in range(int(n_steps)):
        current = current @ P
        out[step] = current
    return out


def markov_chi2_test(counts: np.ndarray) -> tuple[float, int, float]:
    """Chi-square test of the Markov property against independence on transition counts.

    H0: the next state is independent of the current one (``P[i, j] = q[j]`` for every ``i``).
    Expected counts are ``row_i * col_j / N``; rows/columns with no counts are dropped from the
    degrees of freedom ``(r - 1)(c - 1)``. Returns ``(statistic, dof, p_value)``.

    Examples
    --------
    >>> stat, dof, p = markov_chi2_test(np.array([[40, 10], [10, 40]]))
    >>> round(stat, 2), dof
    (36.0, 1)
    """
    from scipy import stats  # imported here: the live path (strategy kinds) never needs scipy

    counts = np.asarray(counts, dtype=float)
    rows = counts.sum(axis=1) > 0
    cols = counts.sum(axis=0) > 0
    table = counts[np.ix_(rows, cols)]
    if table.shape[0] < 2 or table.shape[1] < 2:
        return 0.0, 0, 1.0
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    statistic = float(((table - expected) ** 2 / expected).sum())
    dof = (table.shape[0] - 1) * (table.shape[1] - 1)
    return statistic, dof, float(stats.chi2.sf(statistic, dof))


@dataclass
class RegimeResults:
    """Fitted regime model results: parameters, fit statistics and a printable ``summary()``."""

    model_name: str
    n_regimes: int
    n_obs: int
    transition_matrix: np.ndarray
    regime_table: pd.DataFrame
    loglik: float | None = None
    n_params: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def stationary_distribution(self) -> np.ndarray:
        return stationary_distribution(self.transition_matrix)

    @property
    def expected_durations(self) -> np.ndarray:
        return expected_durations(self.transition_matrix)

    @property
    def bic(self) -> float | None:
        if self.loglik is None or self.n_params is None:
            return None
        return float(-2.0 * self.loglik + self.n_params * np.log(self.n_obs))

    @property
    def aic(self) -> float | None:
        if self.loglik is None or self.n_params is None:
            return None
        return float(-2.0 * self.loglik + 2.0 * self.n_params)

    def summary(self) -> str:
        """Plain-text summary in the statsmodels spirit (header, per-regime table, tests)."""
        import pandas as pd  # here: the regime kinds import this module's helpers in the trader

        width = 78
        lines = ["=" * width, f"{self.model_name} results".center(width), "=" * width]
        header = [("Regimes", self.n_regimes), ("Observations", self.n_obs)]
        if self.loglik is not None:
            header += [("Log-likelihood", f"{self.loglik:.3f}"), ("Parameters", self.n_params),
                       ("AIC", f"{self.aic:.3f}"), ("BIC", f"{self.bic:.3f}")]
        header += list(self.extra.get("header", []))
        lines += [f"{name:<24}{value}" for name, value in header]
        lines.append("-" * width)
        table = self.regime_table.copy()
        table["stationary"] = self.stationary_distribution
        table["expected_duration"] = self.expected_durations
        lines.append(table.to_string(float_format=lambda v: f"{v:.6g}"))
        lines.append("-" * width)
        lines.append("Transition matrix P[i, j] = P(next = j | current = i)")
        labels = [str(i) for i in range(self.n_regimes)]
        lines.append(pd.DataFrame(self.transition_matrix, index=labels, columns=labels)
                     .to_string(float_format=lambda v: f"{v:.4f}"))
        for title, text in self.extra.get("sections", []):
            lines += ["-" * width, title, text]
        lines.append("=" * width)
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()
