"""Optimization and research integrity: sweeps, optuna studies, walk-forward, PSR/DSR/PBO.

Every search result carries its statistical cost: ``n_trials``, the Deflated Sharpe Ratio of the
selected trial and the CSCV Probability of Backtest Overfitting of the whole search.

Examples
--------
>>> from quantlib.data import load
>>> from quantlib.optimize import sweep
>>> res = sweep("ma_cross", load("sample:bars=800"), {"fast": [5, 10], "slow": [30, 60]},
...             progress=False, n_splits=4)
>>> res.n_trials
4
"""

from quantlib.optimize.promotion import PromotionEvidence, export_and_promote, gather_evidence
from quantlib.optimize.space import Dimension, SearchSpace, parse_ranges, product_grid
from quantlib.optimize.stats import (
    OverfittingReport,
    PBOResult,
    ReturnMoments,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    overfitting_report,
    probabilistic_sharpe_ratio,
    probability_of_backtest_overfitting,
    sharpe_ratio,
)
from quantlib.optimize.study import StudyResult, load_study_result, run_study, run_worker
from quantlib.optimize.sweep import SweepResult, sweep
from quantlib.optimize.walkforward import WalkForwardResult, WalkForwardSplitter, walk_forward

__all__ = [
    "Dimension", "SearchSpace", "parse_ranges", "product_grid",
    "PromotionEvidence", "export_and_promote", "gather_evidence",
    "OverfittingReport", "PBOResult", "ReturnMoments", "deflated_sharpe_ratio",
    "expected_max_sharpe", "overfitting_report", "probabilistic_sharpe_ratio",
    "probability_of_backtest_overfitting", "sharpe_ratio",
    "StudyResult", "load_study_result", "run_study", "run_worker",
    "SweepResult", "sweep",
    "WalkForwardResult", "WalkForwardSplitter", "walk_forward",
]
