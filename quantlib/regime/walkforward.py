"""Walk-forward refitting: an out-of-sample regime series for the whole history.

The history is cut into blocks of ``refit_every`` bars. Before each block a fresh clone of the
model is fitted on earlier bars only (expanding or rolling window); that model then filters the
block. Every bar is therefore labelled by a model that never saw it or anything after it, and the
filter itself only looks backwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from quantlib.errors import ParameterError
from quantlib.regime.base import RegimeModel, check_int, check_X


@dataclass
class WalkForwardRegimes:
    """Out-of-sample regime labels and filtered probabilities, and when each model was fitted."""

    proba: pd.DataFrame
    labels: pd.Series
    refits: pd.DataFrame

    def summary(self) -> str:
        shares = self.labels.value_counts(normalize=True).sort_index().round(3).to_dict()
        return (f"walk-forward regimes: {self.labels.notna().sum()} labelled bars, "
                f"{len(self.refits)} refits, regime shares {shares}")


def walk_forward_regimes(model: RegimeModel, X: Any, min_train: int = 1000,
                         refit_every: int = 500, window: str = "expanding",
                         train_size: int | None = None,
                         filter_context: int = 500) -> WalkForwardRegimes:
    """Refit ``model`` every ``refit_every`` bars and label each block out of sample.

    Parameters
    ----------
    model : unfitted regime model (cloned for each refit).
    X : feature rows (DataFrame/Series with an index, or array).
    min_train : bars before the first out-of-sample bar (those bars get no label: NaN).
    refit_every : block length between refits.
    window : ``"expanding"`` (all earlier bars) or ``"rolling"`` (the last ``train_size``).
    filter_context : earlier bars the filter runs over before a block starts, so the block's
        first bars have a warmed-up prior (they are still strictly in the past of the block).

    Examples
    --------
    >>> from quantlib.regime import GaussianHMMRegime
    >>> rng = np.random.default_rng(1)
    >>> x = np.r_[rng.normal(0, 0.01, 600), rng.normal(0, 0.04, 600)]
    >>> wf = walk_forward_regimes(GaussianHMMRegime(2, n_restarts=1, random_state=0), x,
    ...                           min_train=400, refit_every=400)
    >>> int(wf.labels.isna().sum()), len(wf.refits)
    (400, 2)
    """
    arr = check_X(X)
    n_obs = arr.shape[0]
    min_train = check_int(min_train, "min_train", 2, n_obs - 1)
    refit_every = check_int(refit_every, "refit_every", 1)
    filter_context = check_int(filter_context, "filter_context", 0)
    if window not in ("expanding", "rolling"):
        raise ParameterError(f"window: expected 'expanding' or 'rolling', got {window!r}")
    if window == "rolling":
        train_size = check_int(train_size if train_size is not None else min_train,
                               "train_size", 2)
    index = X.index if isinstance(X, pd.Series | pd.DataFrame) else pd.RangeIndex(n_obs)
    proba = None
    refits = []
    for start in range(min_train, n_obs, refit_every):
        stop = min(start + refit_every, n_obs)
        train_start = 0 if window == "expanding" else max(0, start - train_size)
        fitted = clone(model).fit(arr[train_start:start])
        context_start = max(0, start - filter_context)
        block = fitted.predict_proba(arr[context_start:stop]).to_numpy()[start - context_start:]
        if proba is None:
            proba = np.full((n_obs, block.shape[1]), np.nan)
        proba[start:stop] = block
        refits.append({"fit_until": index[start - 1], "train_start": index[train_start],
                       "first_bar": index[start], "last_bar": index[stop - 1],
                       "loglik": getattr(fitted, "loglik_", np.nan)})
    proba_frame = pd.DataFrame(proba, index=index,
                               columns=[f"regime_{k}" for k in range(proba.shape[1])])
    known = np.isfinite(proba).all(axis=1)
    labels = pd.Series(np.where(known, np.nan_to_num(proba).argmax(axis=1), np.nan),
                       index=index, name="regime")
    return WalkForwardRegimes(proba_frame, labels, pd.DataFrame(refits))
