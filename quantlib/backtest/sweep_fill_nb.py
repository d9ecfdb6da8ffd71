"""Account and trade bookkeeping of a fused sweep's combination, and its stop exits.

:func:`account_fill_nb` sends one symbol's signals at a bar through the order rule
(:func:`quantlib.core.order_rule_nb.signal_fill_nb`) with the combination's cash (the caller
carries it: a portfolio's symbols share it) and keeps, in one small row per symbol (slots
``A_*``), the position, the units held, the stop levels, the open trade (size, gross value and
fees: vectorbt's exit-trade records, a reversal splitting its fee between the closed and the
opened units) and the closed trades' sums; :func:`stop_fill_price_nb` is the fill price of a
stop-loss or take-profit on a bar (the open when the open passed the level, else the level
inside the bar's range; the caller passes the open as the range on a bar whose open fills an
order closing or reversing the position), and :func:`stop_step_nb` one bar's stop step (the
check, the trailing move, the exit replacing the bar's signals). The rules in words:
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


# slots of a symbol's account row (account_fill_nb; the cash is the caller's, shared by symbols)
(A_POSITION, A_DEBT, A_UNITS, A_SL, A_TP, A_ENTRY_SIZE, A_ENTRY_GROSS, A_ENTRY_FEES,
 A_TRADE_LONG, A_N_TRADES, A_WINS, A_GROSS_PROFIT, A_GROSS_LOSS, A_PNL_SUM, A_TRADED,
 A_FEES) = range(16)
N_ACCOUNT = 16


@njit(cache=True)
def _close_trade_nb(accts, s, units, fill_price, fee, side):
    """Trade bookkeeping of a fill against the open trade (a close, part-close or reversal);
    returns the closed trade's pnl."""
    size, gross, fees = accts[s, A_ENTRY_SIZE], accts[s, A_ENTRY_GROSS], accts[s, A_ENTRY_FEES]
    is_long = accts[s, A_TRADE_LONG] > 0
    whole = _is_close_nb(units, size)
    if whole or units < size:
        closed = size if whole else units
        pnl = _trade_pnl_nb(closed, gross / size, closed / size * fees, fill_price, fee, is_long)
        keep = 0.0 if whole else (size - units) / size
        accts[s, A_ENTRY_SIZE], accts[s, A_ENTRY_GROSS] = size * keep, gross * keep
        accts[s, A_ENTRY_FEES] = fees * keep
        return pnl
    # reversal: close every unit, open the rest the other way
    closed_fee = size / units * fee
    pnl = _trade_pnl_nb(size, gross / size, fees, fill_price, closed_fee, is_long)
    accts[s, A_ENTRY_SIZE] = units - size
    accts[s, A_ENTRY_GROSS] = accts[s, A_ENTRY_SIZE] * fill_price
    accts[s, A_ENTRY_FEES] = fee - closed_fee
    accts[s, A_TRADE_LONG] = 1.0 if side > 0 else 0.0
    return pnl


@njit(cache=True)
def account_fill_nb(accts, s, cash, free_cash, enter_long, exit_long, enter_short, exit_short,
                    size, sizing, price, fees, slippage):
    """One bar's signals of symbol ``s`` through the order rule, with the account's ``cash`` and
    ``free_cash`` (a portfolio's symbols share them) and the symbol's row ``accts[s]``; then
    the engine's sums, the trade records and the stops. Returns ``(bad, cash, free_cash,
    flow)``: ``bad`` -1 or the order rule's BAD_INPUT argument index, ``flow`` the order's cash
    flow (0 without a fill). 2-D indexing, not a row view: a view costs reference counting."""
    res = signal_fill_nb(cash, accts[s, A_POSITION], accts[s, A_DEBT], free_cash, enter_long,
                         exit_long, enter_short, exit_short, size, sizing, price, fees, slippage)
    if res[0] == BAD_INPUT:
        return int(res[1]), cash, free_cash, 0.0
    if res[0] != FILLED:
        return -1, cash, free_cash, 0.0
    side, units, fill_price, fee = res[2], res[3], res[4], res[5]
    old_position = accts[s, A_POSITION]
    accts[s, A_POSITION], accts[s, A_DEBT] = res[7], res[8]
    signed = units if side > 0 else -units
    accts[s, A_UNITS] += signed
    accts[s, A_TRADED] += fill_price * units
    accts[s, A_FEES] += fee
    _trade_fill_nb(accts, s, side, units, fill_price, fee)
    # stops: cleared when flat, set from the fill when a position opens or flips
    position = res[7]
    if position == 0:
        accts[s, A_SL], accts[s, A_TP] = np.nan, np.nan
    elif old_position == 0 or (old_position > 0) != (position > 0):
        accts[s, A_SL], accts[s, A_TP] = fill_price, fill_price
    return -1, res[6], res[9], -signed * fill_price - fee


@njit(cache=True)
def _trade_fill_nb(accts, s, side, units, fill_price, fee):
    """A fill into the trade records: on the open trade's side it opens or adds, on the other
    it closes or reverses (the closed trade's pnl into the sums)."""
    if accts[s, A_ENTRY_SIZE] == 0.0:
        accts[s, A_ENTRY_SIZE], accts[s, A_ENTRY_GROSS] = units, units * fill_price
        accts[s, A_ENTRY_FEES] = fee
        accts[s, A_TRADE_LONG] = 1.0 if side > 0 else 0.0
        return
    if (accts[s, A_TRADE_LONG] > 0) == (side > 0):
        accts[s, A_ENTRY_SIZE] += units
        accts[s, A_ENTRY_GROSS] += units * fill_price
        accts[s, A_ENTRY_FEES] += fee
        return
    pnl = _close_trade_nb(accts, s, units, fill_price, fee, side)
    if math.isfinite(pnl):
        accts[s, A_N_TRADES] += 1.0
        accts[s, A_PNL_SUM] += pnl
        if pnl > 0:
            accts[s, A_WINS] += 1.0
            accts[s, A_GROSS_PROFIT] += pnl
        elif pnl < 0:
            accts[s, A_GROSS_LOSS] -= pnl


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
    ``quantlib/core/stop_rule.py``). Returns ``(enter_long, exit_long, enter_short,
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
