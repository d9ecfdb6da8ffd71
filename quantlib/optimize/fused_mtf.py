"""Fused sweeps of ``htf_trend``: the wrapped kind's fused kernel, gated by trend masks.

``htf_trend`` trades its inner kind's target where the target's sign agrees with the trend of
the last **closed** higher-timeframe bar, else stays flat (:mod:`quantlib.core.trend`). That
trend depends only on ``(trend_timeframe, trend_kind, trend_window)``, so it is computed once
per distinct triple across the combinations, by the kind's own function
(:func:`~quantlib.core.trend.trend_direction` on the base bars aligned by
:mod:`quantlib.core.informative`), and kept as one mask row (+1 up, -1 down, 0 unknown).
The fused kernel (:func:`quantlib.backtest.sweep_nb.sweep_signals_nb`) gates each combination's
inner target by its row, bar by bar, before exits, directions and sizing apply as for the
unfiltered kind. Memory: masks x bars, not combinations x bars.

Combinations are grouped by inner kind (one kernel call per inner kind); a group whose inner kind
has no fused kernel (a regime filter, a notebook kind...) runs on
:func:`~quantlib.backtest.run_backtest` and reports the same metrics columns.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd

from quantlib.core.informative import attach
from quantlib.core.kinds import indicator_cache
from quantlib.core.registry import StrategyKind, get_kind
from quantlib.core.trend import TREND_INPUT, trend_direction
from quantlib.optimize.fused_base import (
    FUSED_METRICS,
    FusedPlan,
    _indexed,
    _kind_codes,
    backtest_moments,
    plan_of,
)
from quantlib.optimize.stats import ReturnMoments


def _trend_key(p: dict[str, Any]) -> tuple[str, str, int]:
    return str(p["trend_timeframe"]), str(p["trend_kind"]), int(p["trend_window"])


def trend_masks(kind: StrategyKind, frame: pd.DataFrame, params: list[dict[str, Any]]
                ) -> tuple[np.ndarray, np.ndarray]:
    """Trend masks of ``htf_trend`` combinations: ``(masks, row)`` with one mask row (bars,
    +1 / -1 / 0) per distinct ``(trend_timeframe, trend_kind, trend_window)`` and each
    combination's row in ``masks``. Alignment (resampling and the closed-bar rule) is shared by
    every row of the same timeframe.

    Examples
    --------
    >>> from quantlib.data import load
    >>> from quantlib.core import get_kind
    >>> p = {"inner_kind": "ma_cross", "inner_params": {"fast": 5, "slow": 20},
    ...      "trend_timeframe": "4h", "trend_kind": "ma", "trend_window": 10}
    >>> kind = get_kind("htf_trend")
    >>> masks, row = trend_masks(kind, load("sample:bars=300,timeframe=1h"),
    ...                          [kind.validate(p), kind.validate({**p, "trend_window": 5}),
    ...                           kind.validate(p)])
    >>> masks.shape, row.tolist()
    ((2, 300), [1, 0, 1])
    """
    keys = [_trend_key(p) for p in params]
    distinct, row = _indexed(keys)
    example = {key: p for key, p in zip(keys, params, strict=True)}
    masks = np.empty((len(distinct), len(frame)))
    with indicator_cache():  # one alignment per trend timeframe
        for i, key in enumerate(distinct):
            p = example[key]
            trend_only = tuple(s for s in kind.informative_inputs(p) if s.name == TREND_INPUT)
            masks[i] = trend_direction(attach(frame, trend_only), p)
    return masks, row


def _take(moments: Any, order: np.ndarray) -> Any:
    """``moments`` (:class:`~quantlib.optimize.stats.ReturnMoments`) with trials in ``order``."""
    values = {}
    for f in fields(moments):
        v = getattr(moments, f.name)
        values[f.name] = v[:, order] if f.name in ("block_sum", "block_sumsq") else \
            v if f.name == "block_n" else v[order]
    return type(moments)(**values)


@dataclass
class _Group:
    """Combinations sharing an inner kind: their positions in the sweep (increasing), and the
    gated fused plan of the inner kind (None: run_backtest on ``params``)."""

    positions: np.ndarray
    plan: FusedPlan | None
    params: list[dict[str, Any]]


@dataclass
class GatedPlan:
    """A fused ``htf_trend`` sweep, built once: one gated :class:`FusedPlan` per inner kind.
    :meth:`evaluate` runs any slice of the combinations, in the sweep's order."""

    kind: StrategyKind
    frame: pd.DataFrame
    config: Any
    n_splits: int
    groups: list[_Group]
    n: int

    @property
    def n_combos(self) -> int:
        return self.n

    def evaluate(self, start: int = 0, stop: int | None = None) -> tuple[pd.DataFrame, Any]:
        """Metrics (:data:`~quantlib.optimize.fused.FUSED_METRICS`) and return moments of
        combinations ``start:stop``."""
        stop = self.n if stop is None else stop
        parts = []
        for group in self.groups:
            lo, hi = np.searchsorted(group.positions, [start, stop], side="left")
            if lo == hi:
                continue
            if group.plan is not None:
                metrics, moments = group.plan.evaluate(int(lo), int(hi))
            else:
                metrics, moments = self._fallback(group.params[lo:hi])
            parts.append((group.positions[lo:hi], metrics, moments))
        if len(parts) == 1:
            return parts[0][1], parts[0][2]
        order = np.argsort(np.concatenate([p[0] for p in parts]), kind="stable")
        metrics = pd.concat([p[1] for p in parts], ignore_index=True).iloc[order]
        moments = _take(ReturnMoments.concat([p[2] for p in parts]), order)
        return metrics.reset_index(drop=True), moments

    def _fallback(self, params: list[dict[str, Any]]) -> tuple[pd.DataFrame, Any]:
        metrics, moments = backtest_moments(self.kind, self.frame, params, self.config,
                                            self.n_splits)
        return metrics[list(FUSED_METRICS)].reset_index(drop=True), moments


def _fusable(inner: StrategyKind, inner_params: dict[str, Any]) -> bool:
    return inner.signal in _kind_codes() and not inner.informative_inputs(inner_params)


def htf_plan(kind: StrategyKind, frame: pd.DataFrame, checked: list[dict[str, Any]],
             cfg: Any, n_splits: int) -> GatedPlan:
    """The :class:`GatedPlan` of validated ``htf_trend`` parameters on a validated frame
    (built by :func:`quantlib.optimize.fused.fused_plan`)."""
    by_inner: dict[str, list[int]] = {}
    for i, p in enumerate(checked):
        by_inner.setdefault(p["inner_kind"], []).append(i)
    groups = []
    for name, where in by_inner.items():
        inner = get_kind(name)
        params = [checked[i] for i in where]
        inner_params = [inner.validate(p["inner_params"]) for p in params]
        plan = None
        if all(_fusable(inner, ip) for ip in inner_params):
            plan = plan_of(inner, frame, inner_params, cfg, n_splits)
            plan.inputs["mask"], plan.inputs["idx_m"] = trend_masks(kind, frame, params)
        groups.append(_Group(np.asarray(where, dtype=np.int64), plan, params))
    return GatedPlan(kind=kind, frame=frame, config=cfg, n_splits=n_splits, groups=groups,
                     n=len(checked))


__all__ = ["GatedPlan", "htf_plan", "trend_masks"]
