"""Model choice over the number of regimes by BIC (lower is better)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from quantlib.errors import ParameterError
from quantlib.regime.base import RegimeModel, check_int
from quantlib.regime.chain import MarkovChainRegime


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
    from quantlib.regime.hmm import GaussianHMMRegime
    from quantlib.regime.switching import MarkovSwitchingRegime

    if model == "hmm":
        return GaussianHMMRegime(n_regimes=n_regimes, random_state=random_state, **kwargs)
    if model == "switching":
        return MarkovSwitchingRegime(n_regimes=n_regimes, random_state=random_state, **kwargs)
    if model == "chain":
        return MarkovChainRegime(n_bins=n_regimes, **kwargs)
    raise ParameterError(f"model: expected one of {MODELS}, got {model!r}")


def compare_models(X: Any, n_regimes: Iterable[int] = (1, 2, 3, 4),
                   switching_bars: int | None = 1500, n_restarts: int = 3,
                   random_state: int | None = 0,
                   switching_counts: int = 2) -> tuple[RegimeModel, pd.DataFrame]:
    """BIC table of Gaussian HMMs over ``n_regimes``, plus Markov-switching vs HMM head to head.

    The Gaussian HMM rows come from :func:`select_n_regimes` on all of ``X`` (column ``best``
    marks the lowest BIC). The statsmodels switching fit is slow, so it is compared with a
    Gaussian HMM of the same size on the last ``switching_bars`` rows only, for the
    ``switching_counts`` smallest counts >= 2 (column ``sample`` says which rows were used).
    Likelihoods of different samples are not comparable: compare BIC within a sample only.

    Parameters
    ----------
    X : one feature column (the switching model is univariate), e.g. ``regime_features(df)``.
    n_regimes : regime counts compared.
    switching_bars : rows of the switching comparison; ``0`` or ``None`` skips it.
    n_restarts : EM restarts of every Gaussian HMM fit (the switching model uses one start).
    random_state : seed of every fit.
    switching_counts : for how many regime counts (the smallest >= 2) the switching model is fitted.

    Returns
    -------
    best : the lowest-BIC Gaussian HMM fitted on all of ``X``.
    table : one row per fit, indexed by ``n_regimes``; columns ``model``, ``loglik``,
        ``n_params``, ``aic``, ``bic``, ``best``, ``sample``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = pd.DataFrame({"returns": np.r_[rng.normal(0, 0.01, 300), rng.normal(0, 0.04, 300)]})
    >>> best, table = compare_models(x, [1, 2], switching_bars=300, n_restarts=1)
    >>> best.n_regimes_, list(table["model"])
    (2, ['GaussianHMM', 'GaussianHMM', 'MarkovSwitching', 'GaussianHMM'])
    """
    from quantlib.regime.hmm import GaussianHMMRegime
    from quantlib.regime.switching import MarkovSwitchingRegime

    counts = sorted(set(int(k) for k in n_regimes))
    n_bars = check_int(switching_bars or 0, "switching_bars", 0)
    check_int(switching_counts, "switching_counts", 0)
    check_int(n_restarts, "n_restarts", 1)
    hmm = GaussianHMMRegime(n_restarts=n_restarts, random_state=random_state)
    best, table = select_n_regimes(hmm, X, counts)
    table.insert(0, "model", "GaussianHMM")
    rows = [table]
    if n_bars:
        recent = (X.iloc[-n_bars:] if isinstance(X, pd.Series | pd.DataFrame)
                  else np.asarray(X)[-n_bars:])
        for k in [k for k in counts if k >= 2][:switching_counts]:
            switching = MarkovSwitchingRegime(n_regimes=k, n_restarts=1,
                                              random_state=random_state).fit(recent)
            same_size_hmm = clone(hmm).set_params(n_regimes=k).fit(recent)
            rows.append(pd.DataFrame(
                [_bic_row("MarkovSwitching", switching), _bic_row("GaussianHMM", same_size_hmm)],
                index=pd.Index([k, k], name="n_regimes")).assign(sample=f"last {n_bars} bars"))
    return best, pd.concat(rows)


def _bic_row(name: str, fitted: RegimeModel) -> dict[str, Any]:
    return {"model": name, "loglik": fitted.loglik_, "n_params": fitted.n_params_,
            "aic": fitted.aic_, "bic": fitted.bic_}
