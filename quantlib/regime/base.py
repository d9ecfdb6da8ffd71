"""Shared plumbing of the regime estimators (scikit-learn conventions).

``__init__`` only stores parameters; ``fit`` validates them and the data; fitted attributes end
in ``_``; using an unfitted model raises :class:`~quantlib.errors.NotFittedError`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from quantlib.core.regime_filter_nb import filter_step_nb
from quantlib.core.regime_filtering import OnlineRegimeFilter, gaussian_log_emission
from quantlib.errors import DataError, NotFittedError, ParameterError
from quantlib.regime.results import forecast_proba


def check_X(X: Any, name: str = "X", n_features: int | None = None) -> np.ndarray:
    """2-D float array from a Series/DataFrame/array; DataError naming the first bad row."""
    arr = X.to_numpy(dtype=float) if isinstance(X, pd.Series | pd.DataFrame) else np.asarray(X, dtype=float)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise DataError(f"{name}: expected a non-empty 1-D or 2-D array, got shape {arr.shape}")
    bad = ~np.all(np.isfinite(arr), axis=1)
    if bad.any():
        row = int(np.argmax(bad))
        label = X.index[row] if isinstance(X, pd.Series | pd.DataFrame) else row
        raise DataError(
            f"{name}: row {row} ({label}) is not finite; drop warm-up rows first "
            "(quantlib.regime.regime_features does)"
        )
    if n_features is not None and arr.shape[1] != n_features:
        raise DataError(f"{name}: expected {n_features} feature column(s), got {arr.shape[1]}")
    return arr


def check_int(value: Any, name: str, low: int, high: int | None = None) -> int:
    """Validate an integer parameter in ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ParameterError(f"parameter {name!r}: expected an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ParameterError(f"parameter {name!r}: expected an integer {bound}, got {value!r}")
    return int(value)


class RegimeModel(BaseEstimator):
    """Base class: subclasses set ``transmat_``, ``n_regimes_`` and implement the hooks."""

    _fitted_attr = "transmat_"

    def _check_fitted(self) -> None:
        if not hasattr(self, self._fitted_attr):
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet; call fit(X) first"
            )

    def _index(self, X: Any, n_rows: int) -> pd.Index:
        if isinstance(X, pd.Series | pd.DataFrame):
            return X.index
        return pd.RangeIndex(n_rows)

    def predict(self, X: Any) -> pd.Series:
        """Most likely regime per bar from the **filtered** probabilities (causal)."""
        proba = self.predict_proba(X)
        return pd.Series(proba.to_numpy().argmax(axis=1), index=proba.index, name="regime")

    def forecast(self, proba: np.ndarray, n_steps: int = 1) -> np.ndarray:
        """Regime probabilities 1..``n_steps`` bars ahead of the distribution ``proba``."""
        self._check_fitted()
        return forecast_proba(self.transmat_, np.asarray(proba, dtype=float), n_steps)

    def _proba_frame(self, proba: np.ndarray, X: Any) -> pd.DataFrame:
        return pd.DataFrame(proba, index=self._index(X, proba.shape[0]),
                            columns=[f"regime_{k}" for k in range(proba.shape[1])])


class GaussianRegimeModel(RegimeModel):
    """A regime model with Gaussian emissions (``means_``, ``covars_``, ``transmat_``): the
    Gaussian HMM and the Markov-switching regression share its one-bar filter and parameters."""

    def update(self, proba_prev: np.ndarray, x_new: Any) -> np.ndarray:
        """One O(K^2) filter step: P(regime_t | x_<=t) from P(regime_t-1 | x_<=t-1) and x_t."""
        self._check_fitted()
        log_em = gaussian_log_emission(np.atleast_2d(np.asarray(x_new, float)), self.means_,
                                       self.covars_)[0]
        return filter_step_nb(np.asarray(proba_prev, dtype=float), log_em, self.transmat_)[0]

    def online_filter(self, init_proba: np.ndarray | None = None) -> Any:
        """A live :class:`~quantlib.core.regime_filtering.OnlineRegimeFilter`: ``.update(x_new)``
        costs O(K^2 + K d^2) per bar, no refit."""
        self._check_fitted()
        return OnlineRegimeFilter(self.transmat_, self.means_, self.covars_, init_proba)

    def to_params(self) -> dict[str, Any]:
        """Fitted parameters as plain JSON lists in Gaussian-HMM form (usable by the
        ``regime_filter`` kind and strategy specs)."""
        self._check_fitted()
        return {"transmat": self.transmat_.tolist(), "means": self.means_.tolist(),
                "covars": self.covars_.tolist()}
