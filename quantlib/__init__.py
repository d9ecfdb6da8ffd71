"""quantlib: a Jupyter-first quant research workbench for crypto markets.

Sub-packages: ``data`` (loading, validation, ccxt, synthetic default), ``backtest`` (vectorbt and
numba engines, metrics, bias checks), ``regime`` (Markov models), ``optimize`` (sweeps, optuna,
walk-forward, overfitting statistics), ``ml`` (causal features, XGBoost), ``strategy`` (registry of
strategy kinds and JSON specs), ``live`` (paper and ccxt runner), ``report`` (papermill pipeline)
and ``plotting`` (plotly figures).
"""

from quantlib import errors as _errors
from quantlib.errors import *  # noqa: F403  the error family is top-level API, named once there

__version__ = "0.1.0"

__all__ = ["__version__", *_errors.__all__]
