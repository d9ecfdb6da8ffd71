"""Paper trading that fills like the backtest.

The backtest (``quantlib.backtest.engine``) turns target changes into vectorbt signals and runs
``Portfolio.from_signals`` with the order price = next bar's open. This broker applies the same
signals per bar with quantlib's own order rule (``brokers/order_rule_nb.py``, whose docstring
states it): same sizing, fee and slippage arithmetic, one compiled call per fill, no vectorbt in
the trading process. The parity tests check that paper fills equal the backtest's.
"""

from __future__ import annotations

from quantlib.errors import LiveError
from quantlib.live.brokers.base import Broker
from quantlib.live.brokers.order_rule_nb import (
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
    """Simulated account in the state store (cash, position, debt, free cash).

    Parameters
    ----------
    store : the runner's state store (the account lives in its meta table).
    spec : the strategy spec (init_cash, fees, slippage, order size, direction).
    """

    def __init__(self, store: StateStore, spec: StrategySpec):
        super().__init__(store)
        self.spec = spec
        if store.get_meta("cash") is None:
            with store.transaction():
                cash = repr(float(spec.risk.init_cash))
                for key in ("cash", "free_cash"):
                    store.set_meta(key, cash)
                store.set_meta("position", "0.0")
                store.set_meta("debt", "0.0")

    def submit(self, order: OrderRow) -> None:
        # Accepting is all a paper venue does now; the fill comes at the next bar's open.
        current = self.store.get_order(order.client_id)
        if current is not None and current.status == "new":
            with self.store.transaction():
                self.store.update_order(order.client_id, status="sent",
                                        attempts=current.attempts + 1)

    def on_bar(self, time_ms: int, open_price: float, close_price: float) -> None:
        for order in self.store.orders(("new", "sent")):
            if order.bar_time < time_ms:
                self._fill(order, time_ms, open_price)

    def _fill(self, order: OrderRow, time_ms: int, price: float) -> None:
        store, execution, risk = self.store, self.spec.execution, self.spec.risk
        cash, position = store.get_float("cash", 0.0), store.get_float("position", 0.0)
        debt, free_cash = store.get_float("debt", 0.0), store.get_float("free_cash", 0.0)
        prev_target = float(order.intent.split("|")[1]) if "|" in order.intent else 0.0
        le, lx, se, sx = signal_flags(prev_target, order.target, execution.direction)
        sizing = PERCENT if risk.size_type == "percent" else VALUE
        args = (cash, position, debt, free_cash, le, lx, se, sx, risk.signal_size, sizing, price,
                execution.fees, execution.slippage_bps / 1e4)
        (status, detail, side, size, fill_price, fees, *account) = signal_fill_nb(*args)
        if status == BAD_INPUT:  # a corrupted state file or a spec the checks let through
            raise LiveError(f"paper broker, order {order.client_id}: {_ARGUMENTS[detail]} = "
                            f"{args[detail]!r} is outside the order rule's domain "
                            "(quantlib/live/brokers/order_rule_nb.py)")
        if status == NO_ORDER:
            store.update_order(order.client_id, status="cancelled", detail="no order (no-op)")
        elif status == FILLED:
            store.add_fill(order.client_id, time_ms, side, float(fill_price), float(size),
                           float(fees))
            for key, value in zip(("cash", "position", "debt", "free_cash"), account,
                                  strict=True):
                store.set_meta(key, repr(float(value)))
            store.update_order(order.client_id, status="filled", price=float(fill_price),
                               amount=float(size), side=side)
        else:
            store.update_order(order.client_id, status="rejected",
                               detail=f"paper: {_REFUSALS.get(status, f'status {status}')}")


# What signal_fill_nb's refusals mean, for the order's detail column.
_REFUSALS = {TOO_SMALL: "order below the minimum size",
             NO_CASH: "no cash (or free cash) to fill it",
             PERCENT_REVERSAL: "a reversal cannot be sized in percent"}
_ARGUMENTS = {0: "account cash", 1: "account position", 2: "account debt",
              3: "account free_cash", 8: "risk size", 9: "risk.size_type",
              10: "the fill price", 11: "execution.fees", 12: "execution slippage fraction"}

__all__ = ["PaperBroker", "signal_flags"]
