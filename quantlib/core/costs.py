"""The cost and sizing fields shared by backtests and strategy specs, each defined once.

A backtest's :class:`~quantlib.core.config.BacktestConfig` and a spec's ``$.execution`` /
``$.risk`` blocks describe the same money: starting cash, fees, slippage, entry size and exits.
Both read their bounds, units and meaning from :data:`FIELDS` here, so a configuration one
accepts the other accepts too (a valid backtest always exports; ``tests/core/test_costs.py`` walks
every field at its bounds). Plain Python: the trading process imports it.

Why these bounds: the order rule (``quantlib/core/order_rule_nb.py``) needs fees and
slippage below 100 %; a fee above 10 % per side or a slippage above 10 % of the price is a
typo (``0.1`` for ``0.001``), not a market, so both stop there.

Examples
--------
>>> FIELDS["fees"].check(0.002, "BacktestConfig.fees")
0.002
>>> FIELDS["slippage_bps"].check(5000, "BacktestConfig.slippage_bps")
Traceback (most recent call last):
...
quantlib.errors.ParameterError: BacktestConfig.slippage_bps: expected a finite number >= 0.0 and <= 1000.0, got 5000
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from quantlib.errors import ParameterError


@dataclass(frozen=True)
class CostField:
    """One cost or sizing field: its names, bounds, unit and meaning.

    Parameters
    ----------
    name : the :class:`~quantlib.core.config.BacktestConfig` field.
    spec_path : where the spec keeps it (``"execution.fees"``).
    low, high : bounds (``high`` may be ``inf``).
    low_open : whether ``low`` itself is refused (``> low`` instead of ``>= low``).
    unit : the unit, for messages and docs.
    doc : what the number means.
    """

    name: str
    spec_path: str
    low: float
    high: float
    low_open: bool
    unit: str
    doc: str

    def bound_text(self) -> str:
        """The accepted range in words, as messages state it."""
        text = f"> {self.low}" if self.low_open else f">= {self.low}"
        return text + (f" and <= {self.high}" if math.isfinite(self.high) else "")

    def accepts(self, value: Any) -> bool:
        """Whether ``value`` is a finite number inside the bounds (bools are not numbers)."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        too_low = value <= self.low if self.low_open else value < self.low
        return math.isfinite(value) and not too_low and value <= self.high

    def check(self, value: Any, where: str) -> Any:
        """``value`` if accepted, else :class:`ParameterError` naming ``where``."""
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ParameterError(f"{where}: expected a number, got {value!r}")
        if not self.accepts(value):
            raise ParameterError(f"{where}: expected a finite number {self.bound_text()}, "
                                 f"got {value!r}")
        return value

    def pydantic_bounds(self) -> dict[str, float]:
        """The bounds as pydantic ``Field`` keywords (``gt``/``ge``, ``le``)."""
        out = {"gt" if self.low_open else "ge": self.low}
        if math.isfinite(self.high):
            out["le"] = self.high
        return out

    def description(self) -> str:
        """``doc (unit)``, the spec schema's description."""
        return f"{self.doc} ({self.unit})"


_STOP_DOC = "distance as a fraction of the entry fill price"
FIELDS: dict[str, CostField] = {f.name: f for f in (
    CostField("init_cash", "risk.init_cash", 0.0, math.inf, True, "quote currency",
              "starting cash, shared by every symbol of a portfolio"),
    CostField("fees", "execution.fees", 0.0, 0.1, False, "fraction of traded value",
              "fee charged on every fill"),
    CostField("slippage_bps", "execution.slippage_bps", 0.0, 1000.0, False, "basis points",
              "adverse price move on every signal fill (buys pay more, sales receive less)"),
    CostField("size", "risk.order_size", 0.0, math.inf, True,
              "fraction of cash (percent sizing, at most 1) or quote notional (value sizing)",
              "size of an entry"),
    CostField("sl_stop", "risk.sl_stop", 0.0, math.inf, True, "fraction of price",
              f"stop-loss {_STOP_DOC}"),
    CostField("tp_stop", "risk.tp_stop", 0.0, math.inf, True, "fraction of price",
              f"take-profit {_STOP_DOC}"),
    CostField("trail_stop", "risk.trail_stop", 0.0, math.inf, True, "fraction of price",
              "trailing stop-loss distance as a fraction of the best price since entry"),
)}

# Percent sizing spends a fraction of the cash: at most all of it.
MAX_PERCENT_SIZE = 1.0

# The perpetual-swap account's own fields (:class:`~quantlib.backtest.perp.PerpConfig` and a
# perp spec's ``$.perp`` block; the rule is ``quantlib/live/brokers/perp_rule_nb.py``). 125x is
# the highest leverage a major venue (Binance USD-M) grants; a maintenance rate or liquidation
# fee of 100 % of the notional would take the whole position at once. The cost and sizing
# fields a perp shares with spot (cash, fees, slippage, size) are the ones in FIELDS.
PERP_FIELDS: dict[str, CostField] = {f.name: f for f in (
    CostField("leverage", "perp.leverage", 1.0, 125.0, False, "notional / initial margin",
              "leverage of each position (isolated margin)"),
    CostField("maint_margin_rate", "perp.maint_margin_rate", 0.0, 1.0, False,
              "fraction of notional",
              "maintenance margin; liquidated when the isolated equity falls to it "
              "(maint_margin_rate x leverage must be < 1)"),
    CostField("liquidation_fee", "perp.liquidation_fee", 0.0, 1.0, False, "fraction of notional",
              "fee on the notional at the liquidation price (capped at the equity left)"),
)}

__all__ = ["CostField", "FIELDS", "MAX_PERCENT_SIZE", "PERP_FIELDS"]
