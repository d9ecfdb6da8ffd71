"""One compiled call per paper fill, with the backtest's order arithmetic.

Calling the order functions one by one from Python makes numba resolve argument types on every
call (~0.3 ms per fill; a fill bar would be the slowest bar of a run). Here they run inside one
``@njit`` function, with exactly the arguments the backtest's ``Portfolio.from_signals`` passes
to vectorbt, so paper fills stay bit-identical to the backtest. The order functions are
``order_exec_nb``'s port of vectorbt's: the live runner never imports vectorbt (~200 MB RSS).
"""

from __future__ import annotations

from quantlib.jit import njit
from quantlib.live.brokers.order_exec_nb import (
    ACC_DISABLED,
    FILLED,
    OPP_REVERSE_REDUCE,
    PERCENT,
    SHORT_ONLY,
    VALUE,
    execute_order_nb,
    resolve_opposite_entry_nb,
    signals_to_size_nb,
)

SIZE_PERCENT = PERCENT
SIZE_VALUE = VALUE
NO_ORDER = -1  # status when the signals resolve to no order at all


@njit(cache=True,
      aot="Tuple((i8, i8, f8, f8, f8, i8, f8, f8, f8, f8))"
          "(f8, f8, f8, f8, b1, b1, b1, b1, f8, i8, f8, f8, f8)")
def paper_fill_nb(cash, position, debt, free_cash, long_entry, long_exit, short_entry,
                  short_exit, order_size, size_type, price, fees, slippage):
    """Execute one signal-driven order at ``price``; returns
    ``(status, status_info, size, price, fees, side, cash, position, debt, free_cash)`` with
    ``status == NO_ORDER`` when the signals ask for nothing."""
    accumulate = ACC_DISABLED
    if long_entry or short_entry:
        long_entry, long_exit, short_entry, short_exit, accumulate = \
            resolve_opposite_entry_nb(position, long_entry, long_exit, short_entry,
                                      short_exit, OPP_REVERSE_REDUCE, accumulate)
    # vectorbt's default val_price (inf) means "the order price"
    size, size_type, direction = signals_to_size_nb(
        position, long_entry, long_exit, short_entry, short_exit, order_size, size_type,
        accumulate, price)
    if size == 0:
        return (NO_ORDER, 0, 0.0, 0.0, 0.0, 0, cash, position, debt, free_cash)
    if direction == SHORT_ONLY:
        size = -size
    value = cash + position * price if position != 0 else cash
    account, result = execute_order_nb(cash, position, debt, free_cash, price, value, size,
                                       price, size_type, direction, fees, slippage)
    return (result[0], result[1], result[2], result[3], result[4], result[5],
            account[0], account[1], account[2], account[3])


__all__ = ["FILLED", "NO_ORDER", "SIZE_PERCENT", "SIZE_VALUE", "paper_fill_nb"]
