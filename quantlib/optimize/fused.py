"""Fused sweeps of the built-in signal kinds: many combinations in one compiled pass.

:func:`fused_evaluate` builds the indicator rows once per distinct window (with the kinds' own
indicator functions), runs :func:`quantlib.backtest.sweep_nb.sweep_signals_nb` over every
combination and turns its running sums into the metrics of
:func:`quantlib.backtest.metrics.compute_metrics_frame` and the return moments of
:class:`quantlib.optimize.stats.ReturnMoments`. Memory grows with bars x distinct windows, not
bars x combinations. ``htf_trend`` runs the same kernel around its inner kind, gated by one
trend mask per distinct trend setting (:mod:`quantlib.optimize.fused_mtf`).

:func:`fused_unsupported` says why a request cannot take this path (a kind that is not one of
the built-ins, several symbols, a benchmark-relative metric...); callers then fall back to
:func:`quantlib.backtest.run_backtest`, which also stays the way to inspect one or a few
combinations (equity, fills, trades).

The building blocks (the plan on one frame, kernel inputs, metrics) are
:mod:`quantlib.optimize.fused_base`; this module chooses the plan for a request.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from quantlib.backtest.engine import as_frames
from quantlib.core.registry import StrategyKind
from quantlib.errors import ParameterError
from quantlib.optimize.fused_base import (
    FUSED_METRICS,
    FusedPlan,
    check_splits,
    checked_request,
    fused_unsupported,
    is_htf_trend,
    plan_of,
)
from quantlib.optimize.fused_mtf import htf_plan
from quantlib.optimize.fused_portfolio import portfolio_plan


def fused_plan(kind: StrategyKind, data: pd.DataFrame, params: Sequence[Mapping[str, Any]],
               config: Any = None, n_splits: int = 16, *,
               data_validated: bool = False, benchmark: bool = False) -> Any:
    """Validate the request and build the indicator banks of a fused sweep (see
    :func:`fused_evaluate`); raises ParameterError naming what the fused path cannot do.
    ``data_validated=True``: the caller already ran ``validate_ohlcv`` on this frame (an optuna
    objective checks its data once, not on every trial). ``htf_trend`` yields a
    :class:`~quantlib.optimize.fused_mtf.GatedPlan` (the same ``evaluate`` and ``n_combos``).
    A ``{symbol: frame}`` portfolio, or ``benchmark=True`` (rows with the benchmark-relative
    metrics too), yields a :class:`~quantlib.optimize.fused_portfolio.PortfolioPlan`."""
    if not isinstance(data, pd.DataFrame) or benchmark:
        return portfolio_plan(kind, data, params, config, n_splits)
    reason = fused_unsupported(kind, data, config)
    if reason is not None:
        raise ParameterError(f"fused sweep of {kind.name!r}: {reason}")
    cfg, checked = checked_request(kind, params, config)
    frame = data if data_validated else next(iter(as_frames(data).values()))
    check_splits(n_splits, len(frame))
    if is_htf_trend(kind):  # the wrapped kinds' plans, gated by trend masks
        return htf_plan(kind, frame, checked, cfg, int(n_splits))
    return plan_of(kind, frame, checked, cfg, int(n_splits))


def fused_evaluate(kind: StrategyKind, data: pd.DataFrame, params: Sequence[Mapping[str, Any]],
                   config: Any = None, n_splits: int = 16, *, data_validated: bool = False,
                   benchmark: bool = False) -> tuple[pd.DataFrame, Any]:
    """Metrics (one row per combination, :data:`FUSED_METRICS`) and return moments of a
    built-in signal kind, from one fused kernel call.

    Parameters
    ----------
    kind : a built-in signal kind (see :func:`fused_unsupported`).
    data : canonical OHLCV frame, or ``{symbol: frame}`` for a shared-cash portfolio (rows
        then hold every metric, benchmark-relative ones included).
    params : parameter dicts (validated here).
    config : :class:`~quantlib.backtest.BacktestConfig` or a dict of its fields.
    n_splits : CSCV blocks of the return moments (even, >= 2).
    data_validated : skip ``validate_ohlcv`` (the caller checked this frame already).
    benchmark : rows with the benchmark-relative metrics too (the portfolio kernel on one
        symbol).

    Examples
    --------
    >>> from quantlib.data import load
    >>> from quantlib.core import get_kind
    >>> m, mo = fused_evaluate(get_kind("ma_cross"), load("sample:bars=400"),
    ...                        [{"fast": 5, "slow": 20}, {"fast": 10, "slow": 40}], n_splits=4)
    >>> m.shape[0], mo.n_trials
    (2, 2)
    """
    return fused_plan(kind, data, params, config, n_splits, data_validated=data_validated,
                      benchmark=benchmark).evaluate()


__all__ = ["FUSED_METRICS", "FusedPlan", "fused_evaluate", "fused_plan", "fused_unsupported",
           "is_htf_trend", "plan_of"]
