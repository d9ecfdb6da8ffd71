"""One compiled call per paper fill, made of vectorbt's own order functions.

Calling ``resolve_opposite_entry_nb``, ``signals_to_size_nb``, ``order_nb`` and
``execute_order_nb`` one by one from Python makes numba resolve argument types (namedtuples,
keyword defaults) on every call, ~0.3 ms per fill; a fill bar is then the slowest bar of a run.
Here they run inside one ``@njit`` function, with exactly the arguments the backtest's
``Portfolio.from_signals`` passes, so paper fills stay bit-identical to the backtest.
"""

from __future__ import annotations

from numba import njit
from vectorbt.portfolio import nb as vbt_nb
from vectorbt.portfolio.enums import (
    AccumulationMode,
    Direction,
    OppositeEntryMode,
    OrderStatus,
    ProcessOrderState,
    SizeType,
)

# Plain ints: numba freezes module-level ints as compile-time constants.
ACCUMULATE_DISABLED = int(AccumulationMode.Disabled)
REVERSE_REDUCE = int(OppositeEntryMode.ReverseReduce)
SHORT_ONLY = int(Direction.ShortOnly)
SIZE_PERCENT = int(SizeType.Percent)
SIZE_VALUE = int(SizeType.Value)
FILLED = int(OrderStatus.Filled)
NO_ORDER = -1  # status when the signals resolve to no order at all


@njit(cache=True)
def paper_fill_nb(cash, position, debt, free_cash, long_entry, long_exit, short_entry,
                  short_exit, order_size, size_type, price, fees, slippage):
    """Execute one signal-driven order at ``price``; returns
    ``(status, status_info, size, price, fees, side, cash, position, debt, free_cash)`` with
    ``status == NO_ORDER`` when the signals ask for nothing."""
    accumulate = ACCUMULATE_DISABLED
    if long_entry or short_entry:
        long_entry, long_exit, short_entry, short_exit, accumulate = \
            vbt_nb.resolve_opposite_entry_nb(position, long_entry, long_exit, short_entry,
                                             short_exit, REVERSE_REDUCE, accumulate)
    # vectorbt's default val_price (inf) means "the order price"
    size, size_type, direction = vbt_nb.signals_to_size_nb(
        position, long_entry, long_exit, short_entry, short_exit, order_size, size_type,
        accumulate, price)
    if size == 0:
        return (NO_ORDER, 0, 0.0, 0.0, 0.0, 0, cash, position, debt, free_cash)
    if direction == SHORT_ONLY:
        size = -size
    order = vbt_nb.order_nb(size=size, price=price, size_type=size_type, direction=direction,
                            fees=fees, slippage=slippage)
    value = cash + position * price if position != 0 else cash
    state = ProcessOrderState(cash=cash, position=position, debt=debt, free_cash=free_cash,
                              val_price=price, value=value, oidx=0, lidx=0)
    new, result = vbt_nb.execute_order_nb(state, order)
    return (int(result.status), int(result.status_info), result.size, result.price, result.fees,
            int(result.side), new.cash, new.position, new.debt, new.free_cash)
