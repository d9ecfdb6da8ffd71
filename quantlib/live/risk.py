"""Risk limits applied between the signal and the broker.

:class:`RiskManager` caps the target position, and halts trading when equity falls more than
``max_daily_loss`` within a UTC day or more than ``max_drawdown`` from its peak. Its bookkeeping
(peak equity, day start equity, halt reason) lives in the state store, so a restart keeps a halt.

Examples
--------
>>> from quantlib.live.state import StateStore
>>> from quantlib.strategy.spec import RiskSpec
>>> rm = RiskManager(RiskSpec(max_drawdown=0.1), StateStore(":memory:"))
>>> rm.check(0, equity=100.0), rm.check(3_600_000, equity=85.0)
(None, 'max drawdown 15.00% > limit 10.00%')
"""

from __future__ import annotations

import numpy as np

from quantlib.live.state import StateStore
from quantlib.strategy.spec import RiskSpec

_DAY_MS = 86_400_000


class RiskManager:
    """Position cap and equity-based halts, persisted in ``store``'s meta table."""

    def __init__(self, risk: RiskSpec, store: StateStore):
        self.risk = risk
        self.store = store

    @property
    def halted(self) -> str | None:
        """The halt reason, or None while trading is allowed."""
        return self.store.get_meta("halted") or None

    def cap(self, target: float) -> float:
        """Clip ``target`` to ``[-max_position, max_position]``."""
        limit = self.risk.max_position
        return float(np.clip(target, -limit, limit))

    def check(self, bar_time: int, equity: float) -> str | None:
        """Update peak/day bookkeeping with this bar's equity; return a new halt reason or None."""
        store = self.store
        day = bar_time // _DAY_MS
        if store.get_meta("risk_day") != str(day):
            store.set_meta("risk_day", day)
            store.set_meta("day_start_equity", repr(equity))
        peak = max(store.get_float("peak_equity", equity), equity)
        store.set_meta("peak_equity", repr(peak))
        if self.halted:
            return None
        reason = None
        day_start = store.get_float("day_start_equity", equity)
        if self.risk.max_daily_loss is not None and day_start > 0:
            loss = 1.0 - equity / day_start
            if loss > self.risk.max_daily_loss:
                reason = f"max daily loss {loss:.2%} > limit {self.risk.max_daily_loss:.2%}"
        if reason is None and self.risk.max_drawdown is not None and peak > 0:
            drawdown = 1.0 - equity / peak
            if drawdown > self.risk.max_drawdown:
                reason = f"max drawdown {drawdown:.2%} > limit {self.risk.max_drawdown:.2%}"
        if reason:
            store.set_meta("halted", reason)
        return reason


__all__ = ["RiskManager"]
