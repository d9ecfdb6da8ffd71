"""Paper trading that fills like the backtest.

The backtest (``quantlib.backtest.engine``) turns target changes into vectorbt signals and runs
``Portfolio.from_signals`` with the order price = next bar's open. This broker applies the same
signals per bar with quantlib's own order rule (``core/order_rule_nb.py``, whose docstring
states it): same sizing, fee and slippage arithmetic, one compiled call per fill, no vectorbt in
the trading process. Stop-loss, take-profit and trailing exits follow ``core/stop_rule.py``.
The parity tests check that paper fills equal the backtest's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from quantlib.core.order_rule_nb import (
    BAD_INPUT,
    FILLED,
    NO_CASH,
    NO_ORDER,
    PERCENT,
    PERCENT_REVERSAL,
    TOO_SMALL,
    VALUE,
    signal_fill_nb,
)
from quantlib.core.stop_rule import checked_range, exit_price, stop_distances, trail_base
from quantlib.errors import LiveError
from quantlib.live.brokers.base import Broker, accept_paper_order, client_order_id, symbol_key
from quantlib.live.state import OrderRow, StateStore
from quantlib.strategy.spec import StrategySpec


def signal_flags(prev_target: float, target: float, direction: str) -> tuple[bool, bool, bool, bool]:
    """(long_entry, long_exit, short_entry, short_exit) for a target change, as the backtest does.

    Examples
    --------
    >>> signal_flags(0.0, 1.0, "longonly")
    (True, False, False, False)
    >>> signal_flags(1.0, 0.5, "longonly")  # still long: no signal
    (False, False, False, False)
    """
    long_now, long_prev = target > 0, prev_target > 0
    short_now, short_prev = target < 0, prev_target < 0
    if direction == "longonly":
        return (long_now and not long_prev, long_prev and not long_now, False, False)
    if direction == "shortonly":
        return (False, False, short_now and not short_prev, short_prev and not short_now)
    flat = target == 0
    return (long_now and not long_prev, flat and long_prev,
            short_now and not short_prev, flat and short_prev)


class PaperBroker(Broker):
    """Simulated account in the state store: one cash and free cash for the whole spec (a
    portfolio shares them, as the backtest's ``cash_sharing``), a position, a debt and the
    exit bases per symbol (:func:`~quantlib.live.brokers.base.symbol_key`).

    Per bar the symbols are settled in the spec's order, each completely (its exit check,
    then its pending order at the open) before the next: vectorbt's default call sequence
    within a group, so a later symbol's percent entry sizes from the cash the earlier ones left.

    Parameters
    ----------
    store : the runner's state store (the account lives in its meta table).
    spec : the strategy spec (init_cash, fees, slippage, order size, direction, exits).
    """

    def __init__(self, store: StateStore, spec: StrategySpec):
        super().__init__(store)
        self.spec = spec
        self.sl_stop, self.tp_stop, self.trail = stop_distances(spec.risk)
        if store.get_meta("cash") is None:
            with store.transaction():
                cash = repr(float(spec.risk.init_cash))
                for key in ("cash", "free_cash"):
                    store.set_meta(key, cash)
                for symbol in spec.symbols:
                    store.set_meta(self._key("position", symbol), "0.0")
                    store.set_meta(self._key("debt", symbol), "0.0")

    def _key(self, name: str, symbol: str) -> str:
        return symbol_key(name, symbol, self.spec.symbols[0])

    def submit(self, order: OrderRow) -> None:
        accept_paper_order(self.store, order)

    def on_bar(self, bars: Mapping[str, Any]) -> None:
        pending = self.store.orders(("new", "sent"))
        for symbol, bar in bars.items():
            mine = [o for o in pending if o.symbol == symbol and o.bar_time < bar.time]
            if self._exit_on_stop(symbol, bar, mine):
                continue
            for order in mine:
                self._fill(order, bar.time, bar.open)

    # -- exits --------------------------------------------------------------------------------
    def _exit_on_stop(self, symbol: str, bar: Any, pending: list[OrderRow]) -> bool:
        """Check ``symbol``'s stops on ``bar`` (stop_rule.py: against the open alone when a
        pending order closes or reverses the position); on a hit close the position at the
        exit price and drop the bar's pending orders. Returns whether it exited."""
        if self.sl_stop is None and self.tp_stop is None:
            return False
        store = self.store
        position = store.get_float(self._key("position", symbol), 0.0)
        if position == 0:
            return False
        sl_base = store.get_float(self._key("sl_base", symbol), math.nan)
        tp_base = store.get_float(self._key("tp_base", symbol), math.nan)
        high, low = checked_range(bar.open, bar.high, bar.low,
                                  any(self._closes(order) for order in pending))
        price, which = exit_price(position, sl_base, self.sl_stop, tp_base, self.tp_stop,
                                  trail=self.trail, open_=bar.open, high=high, low=low)
        if self.trail:  # moves after the check, whether or not the bar exits
            store.set_meta(self._key("sl_base", symbol),
                           repr(trail_base(position, sl_base, high, low)))
        if math.isnan(price):
            return False
        for order in pending:
            store.update_order(order.client_id, status="cancelled",
                               detail=f"replaced by the {which} exit in the same bar")
        intent = f"exit|{which}"
        cid = client_order_id(self.spec.name, symbol, bar.time, intent)
        store.add_order(OrderRow(
            client_id=cid, bar_time=bar.time, symbol=symbol, intent=intent,
            side=-1 if position > 0 else 1, amount=abs(position),
            target=store.get_float(self._key("target", symbol), 0.0), order_type="stop",
            price=price, status="sent", exchange_id=None, detail="", attempts=1))
        self._execute(store.get_order(cid), bar.time, price, position > 0, position < 0,
                      slippage=0.0)
        return True

    def _closes(self, order: OrderRow) -> bool:
        """Whether a pending signal order closes or reverses the position it finds."""
        le, lx, se, sx = self._flags(order)
        prev_target = self._prev_target(order)
        return lx or sx or (le and prev_target < 0) or (se and prev_target > 0)

    # -- signals ------------------------------------------------------------------------------
    @staticmethod
    def _prev_target(order: OrderRow) -> float:
        return float(order.intent.split("|")[1]) if "|" in order.intent else 0.0

    def _flags(self, order: OrderRow) -> tuple[bool, bool, bool, bool]:
        return signal_flags(self._prev_target(order), order.target,
                            self.spec.execution.direction)

    def _fill(self, order: OrderRow, time_ms: int, price: float) -> None:
        le, lx, se, sx = self._flags(order)
        # long exit / short exit are the flags of the rule; entries are passed as they are
        self._execute(order, time_ms, price, lx, sx, entries=(le, se),
                      slippage=self.spec.execution.slippage_bps / 1e4)

    def _execute(self, order: OrderRow, time_ms: int, price: float, long_exit: bool,
                 short_exit: bool, *, slippage: float,
                 entries: tuple[bool, bool] = (False, False)) -> None:
        """One order through the order rule on ``order.symbol``'s share of the account."""
        store, execution, risk = self.store, self.spec.execution, self.spec.risk
        symbol = order.symbol
        cash, free_cash = store.get_float("cash", 0.0), store.get_float("free_cash", 0.0)
        position = store.get_float(self._key("position", symbol), 0.0)
        debt = store.get_float(self._key("debt", symbol), 0.0)
        sizing = PERCENT if risk.size_type == "percent" else VALUE
        args = (cash, position, debt, free_cash, entries[0], long_exit, entries[1], short_exit,
                risk.signal_size, sizing, price, execution.fees, slippage)
        (status, detail, side, size, fill_price, fees, *account) = signal_fill_nb(*args)
        if status == BAD_INPUT:  # a corrupted state file or a spec the checks let through
            raise LiveError(f"paper broker, order {order.client_id}: {_ARGUMENTS[detail]} = "
                            f"{args[detail]!r} is outside the order rule's domain "
                            "(quantlib/core/order_rule_nb.py)")
        if status == NO_ORDER:
            store.update_order(order.client_id, status="cancelled", detail="no order (no-op)")
        elif status == FILLED:
            store.add_fill(order.client_id, time_ms, side, float(fill_price), float(size),
                           float(fees))
            new_cash, new_position, new_debt, new_free = (float(v) for v in account)
            store.set_meta("cash", repr(new_cash))
            store.set_meta("free_cash", repr(new_free))
            store.set_meta(self._key("position", symbol), repr(new_position))
            store.set_meta(self._key("debt", symbol), repr(new_debt))
            store.update_order(order.client_id, status="filled", price=float(fill_price),
                               amount=float(size), side=side)
            self._arm_stops(symbol, position, new_position, float(fill_price))
        else:
            store.update_order(order.client_id, status="rejected",
                               detail=f"paper: {_REFUSALS.get(status, f'status {status}')}")

    def _arm_stops(self, symbol: str, before: float, after: float, fill_price: float) -> None:
        """Stops are cleared when flat and based on the fill that opens or reverses."""
        if after == 0:
            for name in ("sl_base", "tp_base"):
                self.store.set_meta(self._key(name, symbol), "nan")
        elif before == 0 or (before > 0) != (after > 0):
            for name in ("sl_base", "tp_base"):
                self.store.set_meta(self._key(name, symbol), repr(fill_price))


# What signal_fill_nb's refusals mean, for the order's detail column.
_REFUSALS = {TOO_SMALL: "order below the minimum size",
             NO_CASH: "no cash (or free cash) to fill it",
             PERCENT_REVERSAL: "a reversal cannot be sized in percent"}
_ARGUMENTS = {0: "account cash", 1: "account position", 2: "account debt",
              3: "account free_cash", 8: "risk size", 9: "risk.size_type",
              10: "the fill price", 11: "execution.fees", 12: "execution slippage fraction"}

__all__ = ["PaperBroker", "signal_flags"]
