"""Gaussian hidden Markov model of regimes on hmmlearn, with a causal forward filter.

hmmlearn's ``predict_proba`` returns *smoothed* probabilities (forward-backward: bar t sees the
whole sample), which leak the future into any trading rule. :meth:`GaussianHMMRegime.predict_proba`
therefore runs our own forward filter (``filter_nb``) on the fitted parameters; smoothed values
are only available behind ``smoothed=True``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from hmmlearn.hmm import GaussianHMM

from quantlib.core.regime_filtering import filter_gaussian
from quantlib.errors import ParameterError
from quantlib.regime.base import GaussianRegimeModel, check_int, check_X
from quantlib.regime.results import RegimeResults, stationary_distribution

_COV_PARAMS = {
    "diag": lambda k, d: k * d,
    "full": lambda k, d: k * d * (d + 1) // 2,
    "spherical": lambda k, d: k,
    "tied": lambda k, d: d * (d + 1) // 2,
}


def canonical_order(means: np.ndarray, covars: np.ndarray, order_by: str,
                    feature: int) -> np.ndarray:
    """Permutation sorting regimes calm -> volatile (by emission variance or mean of a feature)."""
    key = covars[:, feature, feature] if order_by == "variance" else means[:, feature]
    return np.argsort(key, kind="stable")


class GaussianHMMRegime(GaussianRegimeModel):
    """Gaussian HMM regimes (hmmlearn EM) with restarts, canonical labels and causal filtering.

    Parameters
    ----------
    n_regimes : number of hidden regimes K (>= 1).
    covariance_type : ``"diag"``, ``"full"``, ``"spherical"`` or ``"tied"``.
    n_restarts : EM runs from different random initialisations; the best log-likelihood wins.
    n_iter, tol : EM iteration cap and convergence tolerance (per restart).
    order_by, order_feature : regimes are relabelled so that regime 0 has the smallest emission
        ``"variance"`` (or ``"mean"``) of feature column ``order_feature``; labels are then stable
        across seeds and refits.
    init : prior of the first filtered bar: ``"stationary"`` (default, right for new data) or
        ``"fitted"`` (hmmlearn's learnt ``startprob_``).
    random_state : seed of the restarts.

    Attributes
    ----------
    transmat_, means_, covars_ (full K x d x d, original units), startprob_, loglik_, bic_,
    aic_, n_params_, n_obs_, restart_logliks_, model_ (best hmmlearn model), order_.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = np.r_[rng.normal(0, 0.01, 300), rng.normal(0, 0.05, 300)]
    >>> m = GaussianHMMRegime(n_regimes=2, n_restarts=2, random_state=0).fit(x)
    >>> bool(m.covars_[0, 0, 0] < m.covars_[1, 0, 0])
    True
    """

    def __init__(self, n_regimes: int = 2, covariance_type: str = "diag", n_restarts: int = 5,
                 n_iter: int = 100, tol: float = 1e-3, order_by: str = "variance",
                 order_feature: int = 0, init: str = "stationary",
                 random_state: int | None = None) -> None:
        self.n_regimes = n_regimes
        self.covariance_type = covariance_type
        self.n_restarts = n_restarts
        self.n_iter = n_iter
        self.tol = tol
        self.order_by = order_by
        self.order_feature = order_feature
        self.init = init
        self.random_state = random_state

    def _validate_params(self, n_features: int) -> None:
        check_int(self.n_regimes, "n_regimes", 1)
        check_int(self.n_restarts, "n_restarts", 1)
        check_int(self.n_iter, "n_iter", 1)
        check_int(self.order_feature, "order_feature", 0, n_features - 1)
        if self.covariance_type not in _COV_PARAMS:
            raise ParameterError(f"parameter 'covariance_type': expected one of "
                                 f"{sorted(_COV_PARAMS)}, got {self.covariance_type!r}")
        if self.order_by not in ("variance", "mean"):
            raise ParameterError(f"parameter 'order_by': expected 'variance' or 'mean', "
                                 f"got {self.order_by!r}")
        if self.init not in ("stationary", "fitted"):
            raise ParameterError(f"parameter 'init': expected 'stationary' or 'fitted', "
                                 f"got {self.init!r}")

    def fit(self, X: Any, y: Any = None) -> GaussianHMMRegime:
        """Fit by EM from ``n_restarts`` random starts; keep the best log-likelihood."""
        arr = check_X(X)
        self._validate_params(arr.shape[1])
        k, n_obs, n_features = self.n_regimes, arr.shape[0], arr.shape[1]
        if n_obs < 10 * k:
            raise ParameterError(f"X: {n_obs} rows are too few to fit {k} regimes (need >= {10 * k})")
        # Hourly returns have variances ~1e-5, below hmmlearn's min_covar; EM runs on
        # standardised features and the parameters are mapped back to original units.
        center, scale = arr.mean(axis=0), arr.std(axis=0)
        scale[scale == 0] = 1.0
        z = (arr - center) / scale
        rng = np.random.default_rng(self.random_state)
        best, best_score, logliks = None, -np.inf, []
        for restart in range(self.n_restarts):
            model = GaussianHMM(n_components=k, covariance_type=self.covariance_type,
                                n_iter=self.n_iter, tol=self.tol,
                                random_state=int(rng.integers(2**31 - 1)), init_params="")
            self._initialise(model, z, rng, jitter=restart > 0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # hmmlearn warns on non-monotone EM steps
                try:
                    model.fit(z)
                    score = float(model.score(z))
                except (ValueError, np.linalg.LinAlgError):
                    score = -np.inf
            logliks.append(score)
            if np.isfinite(score) and score > best_score:
                best, best_score = model, score
        if best is None:
            raise ParameterError(f"GaussianHMMRegime: every one of {self.n_restarts} EM restarts "
                                 "failed; try fewer regimes or more data")
        order = canonical_order(best.means_, best.covars_, self.order_by, self.order_feature)
        self.model_ = best
        self.order_ = order
        self.center_, self.scale_ = center, scale
        self.startprob_ = best.startprob_[order]
        self.transmat_ = best.transmat_[np.ix_(order, order)]
        self.means_ = center + best.means_[order] * scale
        self.covars_ = best.covars_[order] * np.outer(scale, scale)
        self.n_regimes_, self.n_features_in_, self.n_obs_ = k, n_features, n_obs
        # Log-likelihood in original units: the standardisation Jacobian is -sum(log scale) per row.
        self.loglik_ = best_score - n_obs * float(np.log(scale).sum())
        self.restart_logliks_ = np.array(logliks)
        self.n_params_ = (k - 1) + k * (k - 1) + k * n_features + _COV_PARAMS[
            self.covariance_type](k, n_features)
        self.bic_ = -2.0 * self.loglik_ + self.n_params_ * np.log(n_obs)
        self.aic_ = -2.0 * self.loglik_ + 2.0 * self.n_params_
        return self

    def _initialise(self, model: GaussianHMM, z: np.ndarray, rng: np.random.Generator,
                    jitter: bool) -> None:
        # EM from hmmlearn's k-means start converges slowly (and to poor optima) on returns,
        # whose regimes differ in spread, not location. Start instead from groups of bars cut at
        # quantiles of a local variance proxy (a 10-bar mean of the squared ordering feature);
        # restarts draw random cut points and stickiness.
        k, n_features = self.n_regimes, z.shape[1]
        proxy = np.convolve(z[:, self.order_feature] ** 2, np.ones(10) / 10, mode="same")
        shares = rng.dirichlet(np.full(k, 2.0)) if jitter else np.full(k, 1.0 / k)
        cuts = np.quantile(proxy, np.cumsum(shares)[:-1])
        groups = np.searchsorted(cuts, proxy, side="right")
        means, covs = np.empty((k, n_features)), np.empty((k, n_features, n_features))
        for g in range(k):
            members = z[groups == g] if np.sum(groups == g) > n_features + 1 else z
            means[g] = members.mean(axis=0)
            covs[g] = np.cov(members, rowvar=False).reshape(n_features, n_features) \
                + 1e-3 * np.eye(n_features)
        stay = rng.uniform(0.8, 0.99) if jitter else 0.95
        model.startprob_ = np.full(k, 1.0 / k)
        model.transmat_ = (np.full((k, k), (1 - stay) / max(k - 1, 1)) * (1 - np.eye(k))
                           + stay * np.eye(k)) if k > 1 else np.ones((1, 1))
        model.means_ = means
        if self.covariance_type == "full":
            model.covars_ = covs
        elif self.covariance_type == "diag":
            model.covars_ = np.array([np.diag(c) for c in covs])
        elif self.covariance_type == "spherical":
            model.covars_ = np.array([np.trace(c) / n_features for c in covs])
        else:
            model.covars_ = np.cov(z, rowvar=False).reshape(n_features, n_features) \
                + 1e-3 * np.eye(n_features)

    def _init_proba(self) -> np.ndarray:
        return stationary_distribution(self.transmat_) if self.init == "stationary" else self.startprob_

    def predict_proba(self, X: Any, smoothed: bool = False) -> pd.DataFrame:
        """Regime probabilities per bar; FILTERED (bar t uses bars <= t) unless ``smoothed``.

        ``smoothed=True`` returns forward-backward probabilities that use the whole sample,
        including the future: for diagnostics and plots only, never for trading or backtests.
        """
        self._check_fitted()
        arr = check_X(X, n_features=self.n_features_in_)
        if smoothed:
            z = (arr - self.center_) / self.scale_
            proba = self.model_.predict_proba(z)[:, self.order_]
        else:
            proba, _ = filter_gaussian(arr, self.transmat_, self.means_, self.covars_,
                                       self._init_proba())
        return self._proba_frame(proba, X)

    def score(self, X: Any, y: Any = None) -> float:
        """Log-likelihood of ``X`` (original units) from the forward filter."""
        self._check_fitted()
        arr = check_X(X, n_features=self.n_features_in_)
        return float(filter_gaussian(arr, self.transmat_, self.means_, self.covars_,
                                     self._init_proba())[1])

    def summary(self) -> RegimeResults:
        """Statsmodels-style results: per-regime means/volatility, durations, BIC."""
        self._check_fitted()
        table = pd.DataFrame({f"mean_{j}": self.means_[:, j] for j in range(self.n_features_in_)})
        for j in range(self.n_features_in_):
            table[f"std_{j}"] = np.sqrt(self.covars_[:, j, j])
        table.index.name = "regime"
        header = [("Covariance type", self.covariance_type), ("Restarts", self.n_restarts),
                  ("Restart logliks", np.array2string(self.restart_logliks_, precision=1))]
        return RegimeResults("GaussianHMMRegime", self.n_regimes_, self.n_obs_, self.transmat_,
                             table, self.loglik_, self.n_params_, {"header": header})
