"""Fit the regime model behind the ``regime_p{k}`` features, on training rows only.

The model is :class:`quantlib.regime.hmm.GaussianHMMRegime` (hmmlearn EM with restarts) on 1-bar
log returns; its parameters become plain numbers in
:class:`~quantlib.core.ml_features.RegimeFeatureParams`, so the fitted model travels inside the
strategy's JSON params. The features are *filtered* probabilities from a forward pass over a
bounded window (never smoothed, never using a bar after ``t``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from quantlib.core.ml_features import RegimeFeatureParams
from quantlib.errors import DataError, ParameterError


def fit_regime_params(df: pd.DataFrame, n_states: int = 2, window: int = 96,
                      seed: int = 0, n_restarts: int = 2) -> RegimeFeatureParams:
    """Fit a ``n_states`` Gaussian HMM on the 1-bar log returns of ``df`` (the training rows).

    Parameters
    ----------
    df : OHLCV frame restricted to the training period (the caller passes only the fold's
        training rows; nothing here can tell).
    n_states : number of regimes (>= 2); state 0 is the calmest (smallest variance).
    window : forward-filter memory in bars used when computing the features.
    seed : random state of the EM restarts.
    n_restarts : EM restarts (best log-likelihood kept).

    Examples
    --------
    >>> from quantlib.data import load
    >>> params = fit_regime_params(load("sample:seed=1,bars=600"), window=48)
    >>> params.n_states, params.variances[0] < params.variances[1]
    (2, True)
    """
    from quantlib.regime.hmm import GaussianHMMRegime

    if isinstance(n_states, bool) or int(n_states) < 2:
        raise ParameterError(f"regime features: n_states must be >= 2, got {n_states!r}")
    if isinstance(window, bool) or int(window) < 2:
        raise ParameterError(f"regime features: window must be >= 2, got {window!r}")
    close = df["close"].to_numpy(dtype=np.float64)
    ret = np.diff(np.log(close))
    if len(ret) < 20 * n_states:
        raise DataError(f"regime features: {len(ret)} training returns are too few to fit "
                        f"{n_states} regimes (need >= {20 * n_states})")
    # hmmlearn initialises with scikit-learn's KMeans, whose OpenMP threads spin-wait: on a
    # shared machine one thread is ~15x faster for this 1-D problem.
    with threadpool_limits(limits=1):
        model = GaussianHMMRegime(n_regimes=int(n_states), n_restarts=int(n_restarts),
                                  random_state=seed).fit(ret.reshape(-1, 1))
    return RegimeFeatureParams(
        window=int(window),
        transmat=tuple(tuple(float(v) for v in row) for row in model.transmat_),
        means=tuple(float(v) for v in model.means_[:, 0]),
        variances=tuple(float(v) for v in model.covars_[:, 0, 0]),
    )


__all__ = ["fit_regime_params"]
