"""Market regimes: Markov chains, Gaussian HMMs, Markov-switching regressions.

Every model follows scikit-learn conventions (parameters in ``__init__``, ``fit`` validates,
fitted attributes end in ``_``) and has a statsmodels-style ``summary()``. ``predict_proba``
returns FILTERED probabilities (bar t uses bars <= t only); smoothed ones, which use the future,
only behind ``smoothed=True`` and never for trading.

The regime kinds and the forward filter they run are numpy-only and live in
:mod:`quantlib.core` (:mod:`~quantlib.core.regime_kinds`, :mod:`~quantlib.core.regime_filtering`);
the models' names load on first use: the Markov-switching model imports statsmodels (about a
second), the HMM hmmlearn and scikit-learn, and a caller of one model (or of
:func:`regime_features` alone) need not pay for the others.

Examples
--------
>>> from quantlib.data import synthetic_ohlcv
>>> from quantlib.regime import GaussianHMMRegime, regime_features
>>> X = regime_features(synthetic_ohlcv(1000, seed=0).ohlcv, ["returns"])
>>> model = GaussianHMMRegime(n_regimes=2, n_restarts=2, random_state=0).fit(X)
>>> model.predict_proba(X).shape
(999, 2)
"""

from __future__ import annotations

from quantlib._lazy import lazy_exports
from quantlib.core.regime_filtering import (
    OnlineRegimeFilter,
    filter_gaussian,
    gaussian_log_emission,
)
from quantlib.core.regime_kinds import regime_filter_params

_LAZY = {
    "MarkovChainRegime": "chain",
    "FEATURES": "features",
    "feature_warmup": "features",
    "regime_features": "features",
    "GaussianHMMRegime": "hmm",
    "RegimeResults": "results",
    "expected_durations": "results",
    "forecast_proba": "results",
    "markov_chi2_test": "results",
    "stationary_distribution": "results",
    "MODELS": "selection",
    "compare_models": "selection",
    "make_regime_model": "selection",
    "select_n_regimes": "selection",
    "MarkovSwitchingRegime": "switching",
    "WalkForwardRegimes": "walkforward",
    "walk_forward_regimes": "walkforward",
    "RegimeGridComparison": "attribution",
    "compare_regime_grid": "attribution",
    "regime_attribution": "attribution",
    "run_regime_grid": "attribution",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

# the names imported with the package (numpy-only, from quantlib.core), and the lazy ones
__all__ = ["OnlineRegimeFilter", "filter_gaussian", "gaussian_log_emission",
           "regime_filter_params", *_LAZY]
