"""vectorbt's signal-order arithmetic, ported so the live runner need not import vectorbt.

Importing vectorbt costs ~2.4 s and ~200 MB of RSS (it loads plotly, ccxt, scipy, ...); a
paper runner needs five of its numba functions. This module is a port of vectorbt 1.2's
``resolve_opposite_entry_nb``, ``signals_to_size_nb``, ``buy_nb``, ``sell_nb`` and
``execute_order_nb`` (``vectorbt/portfolio/nb.py``, Apache 2.0 with Commons Clause, (c) Oleg
Polakow), restricted to the order fields ``Portfolio.from_signals`` gets from
``quantlib.backtest``: no fixed fees, no minimum/maximum size, no size granularity, no cash
locking, partial fills allowed, no random rejection. The arithmetic is kept expression for
expression, so every fill is bit-identical; ``tests/live/test_order_exec_nb.py`` proves it
against vectorbt's own functions on random account states.

Results are plain tuples instead of vectorbt's namedtuples:
``(status, status_info, size, price, fees, side)`` and ``(cash, position, debt, free_cash)``.
"""

from __future__ import annotations

import numpy as np

from quantlib.jit import njit

# vectorbt.utils.math_ tolerances: sizes and cash within these are "equal".
REL_TOL = 1e-9
ABS_TOL = 1e-12

# vectorbt.portfolio.enums values (checked against vectorbt in the tests).
AMOUNT, VALUE, PERCENT, TARGET_AMOUNT, TARGET_VALUE, TARGET_PERCENT = 0, 1, 2, 3, 4, 5
N_SIZE_TYPES = 6
LONG_ONLY, SHORT_ONLY, BOTH = 0, 1, 2
N_DIRECTIONS = 3
FILLED, IGNORED, REJECTED = 0, 1, 2
INFO_SIZE_NAN, INFO_PRICE_NAN, INFO_VAL_PRICE_NAN, INFO_VALUE_NAN = 0, 1, 2, 3
INFO_VALUE_ZERO_NEG, INFO_SIZE_ZERO, INFO_NO_CASH_SHORT, INFO_NO_CASH_LONG = 4, 5, 6, 7
INFO_NO_OPEN_POSITION, INFO_CANT_COVER_FEES, INFO_MIN_SIZE_NOT_REACHED = 8, 11, 12
BUY, SELL = 0, 1
ACC_DISABLED, ACC_BOTH, ACC_ADD_ONLY, ACC_REMOVE_ONLY = 0, 1, 2, 3
OPP_IGNORE, OPP_CLOSE, OPP_CLOSE_REDUCE, OPP_REVERSE, OPP_REVERSE_REDUCE = 0, 1, 2, 3, 4

# The order fields quantlib's backtests leave at vectorbt's defaults.
FIXED_FEES = 0.0
MIN_SIZE = 0.0


@njit(cache=True)
def is_close_nb(a, b):
    if np.isnan(a) or np.isnan(b):
        return False
    if np.isinf(a) or np.isinf(b):
        return False
    if a == b:
        return True
    return abs(a - b) <= max(REL_TOL * max(abs(a), abs(b)), ABS_TOL)


@njit(cache=True)
def is_close_or_less_nb(a, b):
    if is_close_nb(a, b):
        return True
    return a < b


@njit(cache=True)
def is_less_nb(a, b):
    if is_close_nb(a, b):
        return False
    return a < b


@njit(cache=True)
def add_nb(a, b):
    """``a + b``, snapped to 0.0 when the two cancel within tolerance."""
    if np.sign(a) != np.sign(b):
        if is_close_nb(abs(a), abs(b)):
            return 0.0
    elif is_close_nb(a + b, 0.0):
        return 0.0
    return a + b


@njit(cache=True)
def not_filled_nb(status, info):
    return (status, info, np.nan, np.nan, np.nan, -1)


@njit(cache=True)
def resolve_opposite_entry_nb(position, long_entry, long_exit, short_entry, short_exit,
                              upon_opposite_entry, accumulate):
    if position > 0 and short_entry:
        if upon_opposite_entry == OPP_IGNORE:
            short_entry = False
        elif upon_opposite_entry == OPP_CLOSE:
            short_entry = False
            long_exit = True
            accumulate = ACC_DISABLED
        elif upon_opposite_entry == OPP_CLOSE_REDUCE:
            short_entry = False
            long_exit = True
        elif upon_opposite_entry == OPP_REVERSE:
            accumulate = ACC_DISABLED
    if position < 0 and long_entry:
        if upon_opposite_entry == OPP_IGNORE:
            long_entry = False
        elif upon_opposite_entry == OPP_CLOSE:
            long_entry = False
            short_exit = True
            accumulate = ACC_DISABLED
        elif upon_opposite_entry == OPP_CLOSE_REDUCE:
            long_entry = False
            short_exit = True
        elif upon_opposite_entry == OPP_REVERSE:
            accumulate = ACC_DISABLED
    return long_entry, long_exit, short_entry, short_exit, accumulate


@njit(cache=True)
def signals_to_size_nb(position, long_entry, long_exit, short_entry, short_exit, size,
                       size_type, accumulate, val_price):
    """Direction-aware signals -> ``(order_size, size_type, direction)``."""
    if size_type != AMOUNT and size_type != VALUE and size_type != PERCENT:
        raise ValueError("Only SizeType.Amount, SizeType.Value, and SizeType.Percent are supported")
    order_size = 0.0
    direction = BOTH
    abs_position = abs(position)
    if is_less_nb(size, 0):
        raise ValueError("Negative size is not allowed. You must express direction using signals.")
    reduce = accumulate == ACC_BOTH or accumulate == ACC_REMOVE_ONLY
    add = accumulate == ACC_BOTH or accumulate == ACC_ADD_ONLY
    if position > 0:
        if short_entry:
            if reduce:
                order_size = -size
            else:  # reverse the position
                order_size = -abs_position
                if not np.isnan(size):
                    if size_type == PERCENT:
                        raise ValueError(
                            "SizeType.Percent does not support position reversal using signals")
                    if size_type == VALUE:
                        order_size -= size / val_price
                    else:
                        order_size -= size
                size_type = AMOUNT
        elif long_exit:
            direction = LONG_ONLY
            if reduce:
                order_size = -size
            else:
                order_size = -abs_position
                size_type = AMOUNT
        elif long_entry:
            direction = LONG_ONLY
            if add:
                order_size = size
    elif position < 0:
        if long_entry:
            if reduce:
                order_size = size
            else:
                order_size = abs_position
                if not np.isnan(size):
                    if size_type == PERCENT:
                        raise ValueError(
                            "SizeType.Percent does not support position reversal using signals")
                    if size_type == VALUE:
                        order_size += size / val_price
                    else:
                        order_size += size
                size_type = AMOUNT
        elif short_exit:
            direction = SHORT_ONLY
            if reduce:
                order_size = size
            else:
                order_size = abs_position
                size_type = AMOUNT
        elif short_entry:
            direction = SHORT_ONLY
            if add:
                order_size = -size
    else:
        if long_entry:
            order_size = size
        elif short_entry:
            order_size = -size
    return order_size, size_type, direction


@njit(cache=True)
def buy_nb(cash, position, debt, free_cash, size, price, direction, fees, slippage, percent):
    """Buy and/or cover; returns ``(account, result)`` like vectorbt's ``buy_nb``."""
    account = (cash, position, debt, free_cash)
    adj_price = price * (1 + slippage)
    cash_limit = cash  # no cash locking: the limit is the cash itself
    if not np.isnan(percent):
        cash_limit = min(cash_limit, percent * cash_limit)

    if direction == LONG_ONLY or direction == BOTH:
        if cash_limit == 0:
            return account, not_filled_nb(REJECTED, INFO_NO_CASH_LONG)
        if np.isinf(size) and np.isinf(cash_limit):
            raise ValueError("Attempt to go in long direction infinitely")
    else:
        if position == 0:
            return account, not_filled_nb(REJECTED, INFO_NO_OPEN_POSITION)

    if direction == SHORT_ONLY:
        adj_size = min(-position, size)
    else:
        adj_size = size
    if adj_size == 0:
        return account, not_filled_nb(IGNORED, INFO_SIZE_ZERO)

    req_cash = adj_size * adj_price
    req_fees = req_cash * fees + FIXED_FEES
    total_req_cash = req_cash + req_fees
    if is_close_or_less_nb(total_req_cash, cash_limit):
        final_size = adj_size
        fees_paid = req_fees
        final_req_cash = total_req_cash
    else:  # not enough cash: buy what the cash covers, fees included
        max_req_cash = add_nb(cash_limit, -FIXED_FEES) / (1 + fees)
        if max_req_cash <= 0:
            return account, not_filled_nb(REJECTED, INFO_CANT_COVER_FEES)
        final_size = max_req_cash / adj_price
        fees_paid = cash_limit - max_req_cash
        final_req_cash = cash_limit

    if is_close_nb(adj_size, 0):
        return account, not_filled_nb(IGNORED, INFO_SIZE_ZERO)
    if is_less_nb(final_size, MIN_SIZE):
        return account, not_filled_nb(REJECTED, INFO_MIN_SIZE_NOT_REACHED)

    new_cash = add_nb(cash, -final_req_cash)
    new_position = add_nb(position, final_size)
    if position < 0:
        if new_position < 0:
            short_size = final_size
        else:
            short_size = abs(position)
        avg_entry_price = debt / abs(position)
        debt_diff = short_size * avg_entry_price
        new_debt = add_nb(debt, -debt_diff)
        new_free_cash = add_nb(free_cash + 2 * debt_diff, -final_req_cash)
    else:
        new_debt = debt
        new_free_cash = add_nb(free_cash, -final_req_cash)
    return ((new_cash, new_position, new_debt, new_free_cash),
            (FILLED, -1, final_size, adj_price, fees_paid, BUY))


@njit(cache=True)
def sell_nb(cash, position, debt, free_cash, size, price, direction, fees, slippage, percent):
    """Sell and/or short; returns ``(account, result)`` like vectorbt's ``sell_nb``."""
    account = (cash, position, debt, free_cash)
    adj_price = price * (1 - slippage)

    if direction == LONG_ONLY:
        size_limit = min(position, size)
    elif np.isinf(size) and not np.isnan(percent):
        # the most that can be (short) sold: the long position plus what free cash allows
        long_size = max(position, 0)
        long_cash = long_size * adj_price * (1 - fees)
        total_free_cash = add_nb(free_cash, long_cash)
        if total_free_cash <= 0:
            if position <= 0:
                return account, not_filled_nb(REJECTED, INFO_NO_CASH_SHORT)
            max_size_limit = long_size
        else:
            max_short_size = add_nb(total_free_cash, -FIXED_FEES) / (adj_price * (1 + fees))
            max_size_limit = add_nb(long_size, max_short_size)
            if max_size_limit <= 0:
                return account, not_filled_nb(REJECTED, INFO_CANT_COVER_FEES)
        size_limit = max_size_limit
    else:
        size_limit = size

    if not np.isnan(percent):
        size_limit = percent * size_limit

    if direction == SHORT_ONLY or direction == BOTH:
        if np.isinf(size_limit):
            raise ValueError("Attempt to go in short direction infinitely")
    else:
        if position == 0:
            return account, not_filled_nb(REJECTED, INFO_NO_OPEN_POSITION)

    if is_close_nb(size_limit, 0):
        return account, not_filled_nb(IGNORED, INFO_SIZE_ZERO)
    if is_less_nb(size_limit, MIN_SIZE):
        return account, not_filled_nb(REJECTED, INFO_MIN_SIZE_NOT_REACHED)

    acq_cash = size_limit * adj_price
    fees_paid = acq_cash * fees + FIXED_FEES
    final_acq_cash = add_nb(acq_cash, -fees_paid)
    if final_acq_cash < 0:
        return account, not_filled_nb(REJECTED, INFO_CANT_COVER_FEES)

    new_cash = cash + final_acq_cash
    new_position = add_nb(position, -size_limit)
    if new_position < 0:
        if position < 0:
            short_size = size_limit
        else:
            short_size = abs(new_position)
        short_value = short_size * adj_price
        new_debt = debt + short_value
        free_cash_diff = add_nb(final_acq_cash, -2 * short_value)
        new_free_cash = add_nb(free_cash, free_cash_diff)
    else:
        new_debt = debt
        new_free_cash = free_cash + final_acq_cash
    return ((new_cash, new_position, new_debt, new_free_cash),
            (FILLED, -1, size_limit, adj_price, fees_paid, SELL))


@njit(cache=True)
def _snap_zero(x):
    return 0.0 if is_close_nb(x, 0) else x


@njit(cache=True)
def execute_order_nb(cash, position, debt, free_cash, val_price, value, size, price, size_type,
                     direction, fees, slippage):
    """Execute one order on an account; returns ``(account, result)`` like vectorbt's
    ``execute_order_nb`` with the order built by ``order_nb(size, price, size_type, direction,
    fees, slippage)``."""
    cash, position = _snap_zero(cash), _snap_zero(position)
    debt, free_cash = _snap_zero(debt), _snap_zero(free_cash)
    val_price, value = _snap_zero(val_price), _snap_zero(value)
    account = (cash, position, debt, free_cash)

    if np.isnan(size):
        return account, not_filled_nb(IGNORED, INFO_SIZE_NAN)
    if np.isnan(price):
        return account, not_filled_nb(IGNORED, INFO_PRICE_NAN)

    if np.isnan(cash) or cash < 0:
        raise ValueError("cash cannot be NaN and must be greater than 0")
    if not np.isfinite(position):
        raise ValueError("position must be finite")
    if not np.isfinite(debt) or debt < 0:
        raise ValueError("debt must be finite and 0 or greater")
    if np.isnan(free_cash):
        raise ValueError("free_cash cannot be NaN")
    if not np.isfinite(price) or price <= 0:
        raise ValueError("order.price must be finite and greater than 0")
    if size_type < 0 or size_type >= N_SIZE_TYPES:
        raise ValueError("order.size_type is invalid")
    if direction < 0 or direction >= N_DIRECTIONS:
        raise ValueError("order.direction is invalid")
    if direction == LONG_ONLY and position < 0:
        raise ValueError("position is negative but order.direction is Direction.LongOnly")
    if direction == SHORT_ONLY and position > 0:
        raise ValueError("position is positive but order.direction is Direction.ShortOnly")
    if not np.isfinite(fees):
        raise ValueError("order.fees must be finite")
    if not np.isfinite(slippage) or slippage < 0:
        raise ValueError("order.slippage must be finite and 0 or greater")

    order_size = size
    if direction == SHORT_ONLY:
        order_size *= -1

    if size_type == TARGET_PERCENT:
        if np.isnan(value):
            return account, not_filled_nb(IGNORED, INFO_VALUE_NAN)
        if value <= 0:
            return account, not_filled_nb(REJECTED, INFO_VALUE_ZERO_NEG)
        order_size *= value
        size_type = TARGET_VALUE

    if size_type == VALUE or size_type == TARGET_VALUE:
        if np.isinf(val_price) or val_price <= 0:
            raise ValueError("val_price_now must be finite and greater than 0")
        if np.isnan(val_price):
            return account, not_filled_nb(IGNORED, INFO_VAL_PRICE_NAN)
        order_size /= val_price
        size_type = AMOUNT if size_type == VALUE else TARGET_AMOUNT

    if size_type == TARGET_AMOUNT:
        order_size -= position
        size_type = AMOUNT

    if size_type == AMOUNT and (direction == SHORT_ONLY or direction == BOTH):
        if order_size < 0 and np.isinf(order_size):
            # infinite negative size means 100% to short
            order_size = -1.0
            size_type = PERCENT

    percent = np.nan
    if size_type == PERCENT:
        percent = abs(order_size)
        order_size = np.sign(order_size) * np.inf

    if order_size > 0:
        return buy_nb(cash, position, debt, free_cash, order_size, price, direction, fees,
                      slippage, percent)
    return sell_nb(cash, position, debt, free_cash, -order_size, price, direction, fees,
                   slippage, percent)
