"""Account and trade bookkeeping of a fused sweep's combination, and its stop exits.

:func:`account_fill_nb` sends one bar's signals through the order rule
(:func:`quantlib.core.order_rule_nb.signal_fill_nb`) and keeps, in one small array per
combination (slots ``A_*``), the cash and position, the engine's cash-flow sums, the open
trade (size, gross value and fees: vectorbt's exit-trade records, a reversal splitting its fee
between the closed and the opened units) and the closed trades' sums; :func:`stop_fill_price_nb` is
the fill price of a stop-loss or take-profit on a bar (the open when the open passed the level,
else the level inside the bar's range; the callers pass the open as the range on a bar whose
open fills an order closing or reversing the position), and :func:`stop_step_nb` one bar's
stop step of either fused kernel (the check, the trailing move, the exit replacing the bar's
signals). The rules in words:
:mod:`quantlib.backtest.sweep_nb`.
"""

from __future__ import annotations

import math

import numpy as np

from quantlib.core.order_rule_nb import BAD_INPUT, FILLED, signal_fill_nb
from quantlib.jit import njit

REL_TOL = 1e-9  # vectorbt's tolerance for "the whole position" in its trade records
ABS_TOL = 1e-12


@njit(cache=True)
def _is_close_nb(a, b):
    if a == b:
        return True
    return abs(a - b) <= max(REL_TOL * max(abs(a), abs(b)), ABS_TOL)


@njit(cache=True)
def _trade_pnl_nb(size, entry_price, entry_fees, exit_price, exit_fees, is_long):
    """Pnl of a closed trade, summed in vectorbt's order (a value difference that cancels
    within tolerance is zero)."""
    entry_val = size * entry_price
    exit_val = size * exit_price
    diff = 0.0 if _is_close_nb(exit_val, entry_val) else exit_val - entry_val
    if diff != 0 and not is_long:
        diff = -diff
    return diff - entry_fees - exit_fees


# slots of the per-combination account array (account_fill_nb)
(A_CASH, A_POSITION, A_DEBT, A_FREE_CASH, A_FLOW, A_UNITS, A_SL, A_TP, A_ENTRY_SIZE,
 A_ENTRY_GROSS, A_ENTRY_FEES, A_TRADE_LONG, A_N_TRADES, A_WINS, A_GROSS_PROFIT, A_GROSS_LOSS,
 A_PNL_SUM, A_TRADED, A_FEES) = range(19)
N_ACCOUNT = 19


@njit(cache=True)
def _close_trade_nb(acct, units, fill_price, fee, side):
    """Trade bookkeeping of a fill against the open trade (a close, part-close or reversal);
    returns the closed trade's pnl."""
    size, gross, fees = acct[A_ENTRY_SIZE], acct[A_ENTRY_GROSS], acct[A_ENTRY_FEES]
    is_long = acct[A_TRADE_LONG] > 0
    whole = _is_close_nb(units, size)
    if whole or units < size:
        closed = size if whole else units
        pnl = _trade_pnl_nb(closed, gross / size, closed / size * fees, fill_price, fee, is_long)
        keep = 0.0 if whole else (size - units) / size
        acct[A_ENTRY_SIZE], acct[A_ENTRY_GROSS] = size * keep, gross * keep
        acct[A_ENTRY_FEES] = fees * keep
        return pnl
    # reversal: close every unit, open the rest the other way
    closed_fee = size / units * fee
    pnl = _trade_pnl_nb(size, gross / size, fees, fill_price, closed_fee, is_long)
    acct[A_ENTRY_SIZE] = units - size
    acct[A_ENTRY_GROSS] = acct[A_ENTRY_SIZE] * fill_price
    acct[A_ENTRY_FEES] = fee - closed_fee
    acct[A_TRADE_LONG] = 1.0 if side > 0 else 0.0
    return pnl


@njit(cache=True)
def account_fill_nb(acct, enter_long, exit_long, enter_short, exit_short, size, sizing, price, fees,
             slippage):
    """One bar's signals through the order rule, then the engine's sums, the trade records and
    the stops; returns -1, or the order rule's BAD_INPUT argument index."""
    res = signal_fill_nb(acct[A_CASH], acct[A_POSITION], acct[A_DEBT], acct[A_FREE_CASH],
                         enter_long, exit_long, enter_short, exit_short, size, sizing, price,
                         fees, slippage)
    if res[0] == BAD_INPUT:
        return res[1]
    if res[0] != FILLED:
        return -1
    side, units, fill_price, fee = res[2], res[3], res[4], res[5]
    old_position = acct[A_POSITION]
    acct[A_CASH], acct[A_POSITION], acct[A_DEBT], acct[A_FREE_CASH] = res[6], res[7], res[8], \
        res[9]
    signed = units if side > 0 else -units
    acct[A_UNITS] += signed
    acct[A_FLOW] += -signed * fill_price - fee
    acct[A_TRADED] += fill_price * units
    acct[A_FEES] += fee
    # trades: a fill on the open side opens or adds, the other side closes or reverses
    if acct[A_ENTRY_SIZE] == 0.0:
        acct[A_ENTRY_SIZE], acct[A_ENTRY_GROSS], acct[A_ENTRY_FEES] = units, units * fill_price, fee
        acct[A_TRADE_LONG] = 1.0 if side > 0 else 0.0
    elif (acct[A_TRADE_LONG] > 0) == (side > 0):
        acct[A_ENTRY_SIZE] += units
        acct[A_ENTRY_GROSS] += units * fill_price
        acct[A_ENTRY_FEES] += fee
    else:
        pnl = _close_trade_nb(acct, units, fill_price, fee, side)
        if math.isfinite(pnl):
            acct[A_N_TRADES] += 1.0
            acct[A_PNL_SUM] += pnl
            if pnl > 0:
                acct[A_WINS] += 1.0
                acct[A_GROSS_PROFIT] += pnl
            elif pnl < 0:
                acct[A_GROSS_LOSS] -= pnl
    # stops: cleared when flat, set from the fill when a position opens or flips
    position = acct[A_POSITION]
    if position == 0:
        acct[A_SL], acct[A_TP] = np.nan, np.nan
    elif old_position == 0 or (old_position > 0) != (position > 0):
        acct[A_SL], acct[A_TP] = fill_price, fill_price
    return -1


@njit(cache=True)
def stop_fill_price_nb(position, level_base, stop, open_, low, high, hit_below):
    """Fill price of a stop on this bar, NaN when it does not fire (open first, then level)."""
    if (position > 0 and hit_below) or (position < 0 and not hit_below):
        level = level_base * (1.0 - stop)
        if open_ <= level:
            return open_
        if low <= level <= high:
            return level
        return np.nan
    level = level_base * (1.0 + stop)
    if level <= open_:
        return open_
    if low <= level <= high:
        return level
    return np.nan


@njit(cache=True, inline="always")
def stop_step_nb(position, closing, enter_long, exit_long, enter_short, exit_short, price,
                 slippage, sl_level, tp_level, sl_stop, tp_stop, has_sl, has_tp, trail, open_,
                 high, low):
    """One bar's stops on an open position: the stop-loss, else the take-profit, then the
    trailing level's move (after the check); a stop that fires replaces the bar's signals
    with an exit of the whole position at the stop's price, without slippage.

    ``closing``: an order at this bar's open closes or reverses the position, so the stops
    see the open alone (the signal exit due at the open comes first:
    ``quantlib/live/brokers/stop_rule.py``). Returns ``(enter_long, exit_long, enter_short,
    exit_short, price, slippage, sl_level)``: the bar's order and the stop-loss base level.
    """
    bar_high, bar_low = (open_, open_) if closing else (high, low)
    stop_fill = np.nan
    if has_sl:
        stop_fill = stop_fill_price_nb(position, sl_level, sl_stop, open_, bar_low, bar_high,
                                       True)
    if math.isnan(stop_fill) and has_tp:
        stop_fill = stop_fill_price_nb(position, tp_level, tp_stop, open_, bar_low, bar_high,
                                       False)
    if has_sl and trail:  # the trailing level moves after this bar's check
        if position > 0 and bar_high > sl_level:
            sl_level = bar_high
        elif position < 0 and bar_low < sl_level:
            sl_level = bar_low
    if math.isnan(stop_fill):
        return enter_long, exit_long, enter_short, exit_short, price, slippage, sl_level
    return False, position > 0, False, position < 0, stop_fill, 0.0, sl_level
