"""Numba kernel of the perp backtest (numpy/numba only; pandas lives in ``perp.py``).

The account rule is :mod:`quantlib.live.brokers.perp_rule_nb`; this kernel only orders its steps
over bars. The simulation rule:

Orders from targets
    ``side[t]`` is the sign of the target decided at bar ``t``'s close. When it differs from
    ``side[t-1]`` (``side[-1] = 0``), an order goes at bar ``t+1``'s open: close the position if
    it is not on the new side, then open one on the new side (if not flat). An unchanged side
    sends nothing, so a liquidated position is not re-opened until the target changes (as a
    stop in the signal backtest). The last bar's decision is never filled.
Within bar ``k``, in time order
    1. gap: the held position is liquidated when the mark's open is at or beyond its
       liquidation price;
    2. funding: each funding event assigned to bar ``k`` (events at times in
       ``(open_{k-1}, open_k]``: the position, which changes only at opens, is the one held
       then) is paid on the held position at the mark's open, each followed by the gap check;
    3. the order at the open (last price), by the rule;
    4. intrabar: the position now held is liquidated when the mark's low (long) or high
       (short) reaches its liquidation price;
    5. equity at the close: ``cash + margin + qty * (close - entry_price)`` (last price).
Outputs
    Per bar: equity, qty, cash + margin, funding paid (net, > 0 paid), notional at the close.
    A fill log (bar, kind, signed units, price, fee, pnl) and a trade log (one row per round
    trip: entry/exit bar, signed units, entry/exit price, fees, funding, net pnl, how it ended).
"""

from __future__ import annotations

import numpy as np

from quantlib.jit import njit
from quantlib.live.brokers.perp_rule_nb import (
    OPENED,
    close_position_nb,
    funding_nb,
    liquidate_nb,
    liquidation_price_nb,
    mark_reaches_nb,
    open_position_nb,
)

# fill kinds
FILL_OPEN, FILL_CLOSE, FILL_LIQUIDATION = 0, 1, 2
# how a trade ended
END_OPEN, END_CLOSE, END_LIQUIDATION = 0, 1, 2

# config row
C_INIT_CASH, C_SIZE, C_SIZING, C_FEE, C_SLIPPAGE, C_LEVERAGE, C_MMR, C_LIQ_FEE = range(8)
N_CONFIG = 8

# fill columns: bar, kind, qty (signed, of the position opened/closed), price, fee, pnl
N_FILL = 6
# trade columns: entry bar, exit bar, qty, entry price, exit price, fees, funding, pnl, end
N_TRADE = 9


@njit(cache=True)
def _end_trade_nb(trades, n_trades, exit_bar, exit_price, exit_fee, pnl, end):
    row = trades[n_trades - 1]
    row[1], row[4] = exit_bar, exit_price
    row[5] += exit_fee
    row[7] = pnl - row[5] - row[6]
    row[8] = end


@njit(cache=True)
def _log_fill_nb(fills, n_fills, bar, kind, qty, price, fee, pnl):
    row = fills[n_fills]
    row[0], row[1], row[2], row[3], row[4], row[5] = bar, kind, qty, price, fee, pnl
    return n_fills + 1


@njit(cache=True)
def _liquidate_logged_nb(cash, qty, entry, margin, mmr, liq_fee, bar, fills, n_fills, trades,
                         n_trades):
    """Liquidate, log the fill and end the trade; returns ``(cash, n_fills)``."""
    price, fee_paid, pnl, cash = liquidate_nb(cash, qty, entry, margin, mmr, liq_fee)
    n_fills = _log_fill_nb(fills, n_fills, bar, FILL_LIQUIDATION, qty, price, fee_paid, pnl)
    _end_trade_nb(trades, n_trades, bar, price, fee_paid, pnl, END_LIQUIDATION)
    return cash, n_fills


@njit(cache=True)
def _liquidate_if_reached_nb(cash, qty, entry, margin, mmr, liq_fee, low, high, bar, fills,
                             n_fills, trades, n_trades):
    # A position whose liquidation price the mark's range [low, high] reaches is liquidated at
    # that price: (cash, qty, entry, margin, n_fills) after the check.
    if qty != 0:
        liq = liquidation_price_nb(qty, entry, margin, mmr)
        if mark_reaches_nb(qty, liq, low, high):
            cash, n_fills = _liquidate_logged_nb(cash, qty, entry, margin, mmr, liq_fee, bar,
                                                 fills, n_fills, trades, n_trades)
            return cash, 0.0, 0.0, 0.0, n_fills
    return cash, qty, entry, margin, n_fills


@njit(cache=True)
def perp_backtest_nb(open_, close, mark_open, mark_high, mark_low, side, fund_bar, fund_rate,
                     config):
    """Simulate one target path on a perp account (module rule).

    Parameters
    ----------
    open_, close : last-price opens and closes, float64 per bar.
    mark_open, mark_high, mark_low : mark-price candles on the same bars.
    side : target sign per bar (-1, 0, +1), float64.
    fund_bar : int64 bar at whose open each funding event is paid (sorted); fund_rate : rates.
    config : float64 row indexed by ``C_*``.

    Returns
    -------
    ``(equity, qty, funding, notional, fills, n_fills, trades, n_trades)``.
    """
    n = len(close)
    cash = config[C_INIT_CASH]
    size, sizing = config[C_SIZE], np.int64(config[C_SIZING])
    fee, slippage, leverage = config[C_FEE], config[C_SLIPPAGE], config[C_LEVERAGE]
    mmr, liq_fee = config[C_MMR], config[C_LIQ_FEE]
    qty, entry, margin = 0.0, 0.0, 0.0
    equity, held = np.empty(n), np.empty(n)
    funding, notional = np.zeros(n), np.empty(n)
    fills = np.zeros((3 * n + 1, N_FILL))
    trades = np.zeros((n + 1, N_TRADE))
    n_fills, n_trades, ev = 0, 0, 0
    for k in range(n):
        # 1. gap through the liquidation price at the mark's open
        cash, qty, entry, margin, n_fills = _liquidate_if_reached_nb(
            cash, qty, entry, margin, mmr, liq_fee, mark_open[k], mark_open[k], k, fills, n_fills,
            trades, n_trades)
        # 2. funding events paid at this open
        while ev < len(fund_bar) and fund_bar[ev] <= k:
            if fund_bar[ev] == k and qty != 0:
                payment, margin = funding_nb(qty, margin, mark_open[k], fund_rate[ev])
                funding[k] += payment
                trades[n_trades - 1, 6] += payment
                cash, qty, entry, margin, n_fills = _liquidate_if_reached_nb(
                    cash, qty, entry, margin, mmr, liq_fee, mark_open[k], mark_open[k], k, fills,
                    n_fills, trades, n_trades)
            ev += 1
        # 3. the order decided at the previous close
        if k >= 1:
            new_side = side[k - 1]
            old_side = side[k - 2] if k >= 2 else 0.0
            if new_side != old_side:
                if qty != 0 and (new_side == 0 or (qty > 0) != (new_side > 0)):
                    price, fee_paid, pnl, cash = close_position_nb(cash, qty, entry, margin,
                                                                   open_[k], fee, slippage)
                    n_fills = _log_fill_nb(fills, n_fills, k, FILL_CLOSE, qty, price, fee_paid,
                                           pnl)
                    _end_trade_nb(trades, n_trades, k, price, fee_paid, pnl, END_CLOSE)
                    qty, entry, margin = 0.0, 0.0, 0.0
                if new_side != 0 and qty == 0:
                    out = open_position_nb(cash, np.int64(new_side), size, sizing, open_[k], fee,
                                           slippage, leverage)
                    if out[0] == OPENED:
                        qty, price, fee_paid, cash, entry, margin = (out[1], out[2], out[3],
                                                                     out[4], out[5], out[6])
                        n_fills = _log_fill_nb(fills, n_fills, k, FILL_OPEN, qty, price,
                                               fee_paid, 0.0)
                        row = trades[n_trades]
                        row[0], row[1], row[2], row[3] = k, -1, qty, price
                        row[4], row[5], row[6], row[7], row[8] = np.nan, fee_paid, 0.0, 0.0, END_OPEN
                        n_trades += 1
        # 4. intrabar liquidation on the mark's range
        cash, qty, entry, margin, n_fills = _liquidate_if_reached_nb(
            cash, qty, entry, margin, mmr, liq_fee, mark_low[k], mark_high[k], k, fills, n_fills,
            trades, n_trades)
        # 5. mark to the close
        equity[k] = cash + margin + qty * (close[k] - entry)
        held[k] = qty
        notional[k] = abs(qty) * close[k]
    if n_trades > 0 and trades[n_trades - 1, 8] == END_OPEN:  # still open: valued at the close
        row = trades[n_trades - 1]
        row[7] = qty * (close[n - 1] - entry) - row[5] - row[6]
    return equity, held, funding, notional, fills, n_fills, trades, n_trades


__all__ = ["perp_backtest_nb", "FILL_OPEN", "FILL_CLOSE", "FILL_LIQUIDATION", "END_OPEN",
           "END_CLOSE", "END_LIQUIDATION", "N_CONFIG"]
