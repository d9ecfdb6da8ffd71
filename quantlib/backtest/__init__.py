"""Backtests: the vectorbt engine for signal kinds, the numba grid engine, metrics, bias checks.

Every name but :class:`BacktestConfig` loads on first use: the engine, bias checks, metrics and
results import pandas (the engine numba too, and vectorbt when it runs a signal kind), while
``from quantlib.backtest import BacktestConfig`` loads none of them (the config itself is
:mod:`quantlib.core.config`).

Examples
--------
>>> from quantlib.backtest import run_backtest, BacktestConfig
>>> from quantlib.data import load
>>> res = run_backtest("ma_cross", load("sample:bars=400"), {"fast": 5, "slow": 20},
...                    BacktestConfig(fees=0.0005))
>>> res.metrics.shape[0]
1
"""

from __future__ import annotations

from quantlib._lazy import lazy_exports
from quantlib.core.config import BacktestConfig

_LAZY = {
    "METRIC_NAMES": "metrics",
    "compute_metrics": "metrics",
    "compute_metrics_frame": "metrics",
    "BacktestResult": "result",
    "run_backtest": "engine",
    "check_lookahead": "bias",
    "check_recursive": "bias",
    "BiasCheckResult": "bias",
    "PerpConfig": "perp",
    "run_perp_backtest": "perp",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

# the lazy names, and the one imported with the package
__all__ = ["BacktestConfig", *_LAZY]
