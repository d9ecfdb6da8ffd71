"""Model choice over the number of regimes by BIC (lower is better)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from quantlib.errors import ParameterError
from quantlib.regime.base import RegimeModel


def select_n_regimes(model: RegimeModel, X: Any, n_regimes: Iterable[int] = (1, 2, 3, 4),
                     param: str = "n_regimes") -> tuple[RegimeModel, pd.DataFrame]:
    """Fit a clone of ``model`` for each regime count; return the lowest-BIC fit and a table.

    BIC = -2 log L + p log n, with p the free parameters (start/transition probabilities, means,
    covariances). The table has one row per count: ``loglik``, ``n_params``, ``aic``, ``bic``.

    Examples
    --------
    >>> from quantlib.regime import GaussianHMMRegime
    >>> rng = np.random.default_rng(0)
    >>> x = np.r_[rng.normal(0, 0.01, 400), rng.normal(0, 0.04, 400)]
    >>> best, table = select_n_regimes(GaussianHMMRegime(n_restarts=2, random_state=0), x, [1, 2])
    >>> int(table["bic"].idxmin())
    2
    """
    counts = sorted(set(int(k) for k in n_regimes))
    if not counts:
        raise ParameterError("n_regimes: expected at least one regime count")
    rows, fits = [], {}
    for k in counts:
        fitted = clone(model).set_params(**{param: k}).fit(X)
        if not hasattr(fitted, "bic_"):
            raise ParameterError(f"{type(model).__name__} has no likelihood (no bic_): BIC model "
                                 "choice needs GaussianHMMRegime or MarkovSwitchingRegime")
        fits[k] = fitted
        rows.append({param: k, "loglik": fitted.loglik_, "n_params": fitted.n_params_,
                     "aic": fitted.aic_, "bic": fitted.bic_})
    table = pd.DataFrame(rows).set_index(param)
    table["best"] = table["bic"] == table["bic"].min()
    best_k = int(table["bic"].idxmin())
    if not np.isfinite(table.loc[best_k, "bic"]):
        raise ParameterError("select_n_regimes: no fit produced a finite BIC")
    return fits[best_k], table


MODELS = ("hmm", "switching", "chain")


def make_regime_model(model: str, n_regimes: int = 3, random_state: int | None = 0,
                      **kwargs: Any) -> RegimeModel:
    """A regime model by name: ``"hmm"``, ``"switching"`` or ``"chain"`` (``n_regimes`` = bins).

    Examples
    --------
    >>> make_regime_model("chain", 4)
    MarkovChainRegime(n_bins=4)
    """
    from quantlib.regime.chain import MarkovChainRegime
    from quantlib.regime.hmm import GaussianHMMRegime
    from quantlib.regime.switching import MarkovSwitchingRegime

    if model == "hmm":
        return GaussianHMMRegime(n_regimes=n_regimes, random_state=random_state, **kwargs)
    if model == "switching":
        return MarkovSwitchingRegime(n_regimes=n_regimes, random_state=random_state, **kwargs)
    if model == "chain":
        return MarkovChainRegime(n_bins=n_regimes, **kwargs)
    raise ParameterError(f"model: expected one of {MODELS}, got {model!r}")
