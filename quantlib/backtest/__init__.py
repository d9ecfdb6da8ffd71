"""Backtests: the vectorbt engine for signal kinds, the numba grid engine, metrics, bias checks.

Every name but :class:`BacktestConfig` loads on first use: the engine and bias checks import
vectorbt (slow to import), metrics and results pandas, and the live runner, which imports the
config, the grid kind and the kernels from here, loads neither.

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

from importlib import import_module
from typing import Any

from quantlib.backtest.config import BacktestConfig

_LAZY = {
    "METRIC_NAMES": "quantlib.backtest.metrics",
    "compute_metrics": "quantlib.backtest.metrics",
    "compute_metrics_frame": "quantlib.backtest.metrics",
    "BacktestResult": "quantlib.backtest.result",
    "run_backtest": "quantlib.backtest.engine",
    "check_lookahead": "quantlib.backtest.bias",
    "check_recursive": "quantlib.backtest.bias",
    "BiasCheckResult": "quantlib.backtest.bias",
    "PerpConfig": "quantlib.backtest.perp",
    "run_perp_backtest": "quantlib.backtest.perp",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'quantlib.backtest' has no attribute {name!r}")


__all__ = [
    "BacktestConfig",
    "BacktestResult",
    "BiasCheckResult",
    "METRIC_NAMES",
    "PerpConfig",
    "check_lookahead",
    "check_recursive",
    "compute_metrics",
    "compute_metrics_frame",
    "run_backtest",
    "run_perp_backtest",
]
