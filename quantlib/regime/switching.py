"""Markov-switching regression regimes on statsmodels ``MarkovRegression``.

Switching mean and variance of a single series (typically log returns). Filtered probabilities
come from statsmodels' ``filtered_marginal_probabilities`` (Hamilton filter, causal); smoothed ones
(Kim smoother, uses the future) only behind ``smoothed=True``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
from statsmodels.tsa.regime_switching.markov_regression import MarkovRegression

from quantlib.errors import ParameterError
from quantlib.regime.base import GaussianRegimeModel, check_int, check_X
from quantlib.regime.results import RegimeResults


class MarkovSwitchingRegime(GaussianRegimeModel):
    """Hamilton Markov-switching model with regime-dependent mean and variance.

    Parameters
    ----------
    n_regimes : number of regimes K (>= 2).
    switching_variance : let the variance switch with the regime (the volatility regimes).
    n_restarts : fits from statsmodels' default start plus ``n_restarts - 1`` randomised starts
        (``search_reps``); the best log-likelihood wins.
    maxiter, em_iter : optimiser iterations and EM warm-up iterations per restart.
    random_state : seed of the randomised starts.

    Attributes
    ----------
    transmat_ (P[i, j] = P(next = j | current = i)), means_ (K, 1), covars_ (K, 1, 1), loglik_,
    bic_, aic_, n_params_, n_obs_, results_ (best statsmodels results, scaled units), order_.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = np.r_[rng.normal(0, 0.01, 200), rng.normal(0, 0.05, 200)]
    >>> m = MarkovSwitchingRegime(n_regimes=2, n_restarts=1).fit(x)
    >>> bool(m.covars_[0, 0, 0] < m.covars_[1, 0, 0])
    True
    """

    def __init__(self, n_regimes: int = 2, switching_variance: bool = True, n_restarts: int = 2,
                 maxiter: int = 100, em_iter: int = 10, random_state: int | None = None) -> None:
        self.n_regimes = n_regimes
        self.switching_variance = switching_variance
        self.n_restarts = n_restarts
        self.maxiter = maxiter
        self.em_iter = em_iter
        self.random_state = random_state

    def _model(self, y: np.ndarray) -> MarkovRegression:
        return MarkovRegression(y, k_regimes=self.n_regimes, trend="c",
                                switching_variance=bool(self.switching_variance))

    def fit(self, X: Any, y: Any = None) -> MarkovSwitchingRegime:
        """Fit by maximum likelihood with restarts; relabel regimes calm -> volatile."""
        arr = check_X(X, n_features=1)
        k = check_int(self.n_regimes, "n_regimes", 2)
        check_int(self.n_restarts, "n_restarts", 1)
        check_int(self.maxiter, "maxiter", 1)
        check_int(self.em_iter, "em_iter", 0)
        if arr.shape[0] < 10 * k:
            raise ParameterError(f"X: {arr.shape[0]} rows are too few to fit {k} regimes")
        # statsmodels' optimiser struggles with variances ~1e-5: fit on unit-variance data and
        # map the parameters back.
        self.scale_ = float(1.0 / arr[:, 0].std()) if arr[:, 0].std() > 0 else 1.0
        scaled = arr[:, 0] * self.scale_
        model = self._model(scaled)
        rng = np.random.default_rng(self.random_state)
        best, logliks = None, []
        for restart in range(self.n_restarts):
            kwargs = {} if restart == 0 else {"search_reps": 20, "rng": int(rng.integers(2**31))}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # convergence chatter from the optimiser
                try:
                    res = model.fit(maxiter=self.maxiter, em_iter=self.em_iter, disp=False,
                                    **kwargs)
                    llf = float(res.llf)
                except (ValueError, np.linalg.LinAlgError):
                    llf = -np.inf
            logliks.append(llf)
            if np.isfinite(llf) and (best is None or llf > best.llf):
                best = res
        if best is None:
            raise ParameterError("MarkovSwitchingRegime: every restart failed; try fewer regimes")
        # regime_transition[i, j] = P(s_t = i | s_t-1 = j) in statsmodels: transpose to rows=from.
        P = np.asarray(best.regime_transition)[..., 0].T
        names = best.model.param_names
        sigma2 = np.array([best.params[names.index(f"sigma2[{i}]")] if self.switching_variance
                           else best.params[names.index("sigma2")] for i in range(k)], float)
        const = np.array([best.params[names.index(f"const[{i}]")] for i in range(k)], float)
        order = np.lexsort((const, sigma2)) if self.switching_variance else np.argsort(const)
        self.results_, self.order_ = best, order
        self.transmat_ = P[np.ix_(order, order)]
        self.means_ = (const[order] / self.scale_)[:, None]
        self.covars_ = (sigma2[order] / self.scale_**2)[:, None, None]
        self.n_regimes_, self.n_features_in_, self.n_obs_ = k, 1, arr.shape[0]
        self.n_params_ = len(best.params)
        self.loglik_ = float(best.llf) + arr.shape[0] * np.log(self.scale_)
        self.restart_logliks_ = np.array(logliks)
        self.bic_ = -2.0 * self.loglik_ + self.n_params_ * np.log(self.n_obs_)
        self.aic_ = -2.0 * self.loglik_ + 2.0 * self.n_params_
        return self

    def predict_proba(self, X: Any, smoothed: bool = False) -> pd.DataFrame:
        """FILTERED regime probabilities (Hamilton filter, bar t uses bars <= t).

        ``smoothed=True`` returns Kim-smoothed probabilities that use the whole sample, future
        included: for diagnostics and plots only, never for trading or backtests.
        """
        self._check_fitted()
        arr = check_X(X, n_features=1)
        res = self._model(arr[:, 0] * self.scale_).smooth(self.results_.params) if smoothed \
            else self._model(arr[:, 0] * self.scale_).filter(self.results_.params)
        proba = (res.smoothed_marginal_probabilities if smoothed
                 else res.filtered_marginal_probabilities)
        return self._proba_frame(np.asarray(proba)[:, self.order_], X)

    def score(self, X: Any, y: Any = None) -> float:
        """Log-likelihood of ``X`` in original units."""
        self._check_fitted()
        arr = check_X(X, n_features=1)
        res = self._model(arr[:, 0] * self.scale_).filter(self.results_.params)
        return float(res.llf) + arr.shape[0] * np.log(self.scale_)

    def summary(self) -> RegimeResults:
        """Statsmodels-style results: per-regime mean/volatility, durations, BIC."""
        self._check_fitted()
        table = pd.DataFrame({"mean": self.means_[:, 0], "std": np.sqrt(self.covars_[:, 0, 0])},
                             index=pd.RangeIndex(self.n_regimes_, name="regime"))
        header = [("Switching variance", self.switching_variance),
                  ("Restarts", self.n_restarts),
                  ("Restart logliks", np.array2string(self.restart_logliks_, precision=1))]
        return RegimeResults("MarkovSwitchingRegime", self.n_regimes_, self.n_obs_, self.transmat_,
                             table, self.loglik_, self.n_params_, {"header": header})
