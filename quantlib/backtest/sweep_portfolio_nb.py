"""Fused sweeps of shared-cash portfolios: many combinations of a signal kind on several symbols.

One ``prange`` call backtests every parameter combination of a built-in signal kind on a
portfolio of symbols that share one cash account, the way
:func:`quantlib.backtest.run_backtest` runs ``{symbol: frame}`` (and
:mod:`quantlib.backtest.rule_engine` restates it on the order and stop rules): every bar,
every symbol in the portfolio's order, completely (its stop check, then its signal) before the
next; each symbol's fill sees the cash the symbols before it left.

Per combination the kernel first computes each symbol's target path (one buffer of bars per
symbol, freed when the combination is done: memory grows with threads x symbols x bars, never
with combinations) from the indicator rows of :mod:`quantlib.backtest.sweep_rows_nb`, decided
exactly as :mod:`quantlib.backtest.sweep_nb` decides them (approximate rows outside their
bound, the kind's own values inside it). It then walks the bars once: signals are the changes
of the clipped targets, fills go through the order rule via
:func:`quantlib.backtest.sweep_fill_nb.account_fill_nb` (one account slot array per symbol,
cash and free cash carried from symbol to symbol), stops through
:func:`quantlib.backtest.sweep_fill_nb.stop_fill_price_nb` (against the open alone on a bar
whose open fills an order closing or reversing the symbol's position: the rule of
``quantlib/live/brokers/stop_rule.py``), and only running sums leave the loop.

Equity at bar ``t`` is summed as the engine sums it: ``init_cash + cumulative (sum over
symbols of the bar's cash flows) + sum over symbols of units * close``. The output row holds
the single-symbol kernel's sums (columns ``S_*`` of :mod:`quantlib.backtest.sweep_nb`) plus
three benchmark sums (``P_*``): with ``b`` the benchmark's bar returns (buy-and-hold of the
symbols, equal weight, as the metrics function defines it), ``sum r (b - mean b)``, ``sum r``
over bars with ``b > 0`` and over bars with ``b < 0``: alpha, beta, correlation, information
ratio and capture ratios follow from them without a bars x combinations matrix.
"""

from __future__ import annotations

import math

import numpy as np

from quantlib.backtest.sweep_fill_nb import (
    A_CASH,
    A_FEES,
    A_FLOW,
    A_FREE_CASH,
    A_GROSS_LOSS,
    A_GROSS_PROFIT,
    A_N_TRADES,
    A_PNL_SUM,
    A_POSITION,
    A_SL,
    A_TP,
    A_TRADED,
    A_UNITS,
    A_WINS,
    N_ACCOUNT,
    account_fill_nb,
    stop_step_nb,
)
from quantlib.backtest.sweep_nb import (
    DONCHIAN,
    MACD,
    N_STATS,
    S_BAD_ARG,
    S_DD_BARS,
    S_DOWN_SQ,
    S_EXPOSED,
    S_FEES,
    S_FINAL,
    S_GROSS_LOSS,
    S_GROSS_PROFIT,
    S_MAX_DD,
    S_N_TRADES,
    S_PNL_SUM,
    S_SUM_R,
    S_SUM_R2,
    S_SUM_R3,
    S_SUM_R4,
    S_SUM_VALUE,
    S_TRADED,
    S_WINS,
    _clip_nb,
    _combo_rows_nb,
    _donchian_targets_nb,
    _drawdown_step_nb,
    _exact_level_nb,
    _macd_first_nb,
    _moments_step_nb,
    _rows_target_nb,
    _signals_nb,
    _tolerance_nb,
)
from quantlib.backtest.sweep_rows_nb import max_abs_nb
from quantlib.jit import njit, prange

# benchmark sums appended to the single-symbol kernel's columns
P_COV = N_STATS  # sum of r_t * (b_t - mean b)
P_UP = N_STATS + 1  # sum of r_t over bars with b_t > 0
P_DOWN = N_STATS + 2  # sum of r_t over bars with b_t < 0
N_PSTATS = N_STATS + 3



@njit(cache=True)
def _target_path_nb(kind, c, close, scale, bank_a, bank_b, meta_a, meta_b, idx_a, idx_b, par1,
                    par2, warmup, long_ok, short_ok, out):
    """The clipped target of combination ``c`` at every bar of one symbol, into ``out``."""
    n = close.shape[0]
    if kind == DONCHIAN:
        path = _donchian_targets_nb(c, bank_a, bank_b, idx_a, par1, warmup, close)
        for t in range(n):
            out[t] = _clip_nb(path[t], long_ok, short_ok)
        return
    ia, ib, row_a, row_b, p1, p2, len_g, w_g, q_g, c_first, c_last = _combo_rows_nb(
        kind, c, bank_a, bank_b, meta_a, idx_a, idx_b, par1, par2)
    tol = _tolerance_nb(kind, meta_a, meta_b, ia, ib, p1, p2, scale)
    warm = warmup[c]
    signal_line = np.nan
    for t in range(n):  # decided as sweep_nb decides them (_rows_target_nb: why scalars)
        if t < warm:
            target = 0.0
        else:
            a, b = row_a[t], row_b[t]
            if kind == MACD:
                line = a - b
                b = (_macd_first_nb(row_a, row_b, t, w_g, len_g) if math.isnan(signal_line)
                     else q_g * signal_line + c_first * line
                     - c_last * (row_a[t - len_g] - row_b[t - len_g]))
                a, signal_line = line, b
            target = _rows_target_nb(kind, a, b, close[t], tol, p1, p2)
            if math.isnan(target):
                target = _exact_level_nb(kind, close, t, meta_a, meta_b, ia, ib, p1, p2)
        out[t] = _clip_nb(target, long_ok, short_ok)


@njit(cache=True)
def _fill_leg_nb(acct, cash, free_cash, signals, size, sizing, price, fees, slippage):
    """One symbol's fill on the shared account: ``(bad, cash, free_cash, flow)``."""
    acct[A_CASH], acct[A_FREE_CASH], acct[A_FLOW] = cash, free_cash, 0.0
    bad = account_fill_nb(acct, signals[0], signals[1], signals[2], signals[3], size, sizing,
                          price, fees, slippage)
    return bad, acct[A_CASH], acct[A_FREE_CASH], acct[A_FLOW]


@njit(cache=True, error_model="numpy")
def _simulate_portfolio_nb(kind, c, open_, high, low, close, price, bank_a, bank_b, meta_a,
                           meta_b, idx_a, idx_b, par1, par2, warmup, shift, size, sizing, fees,
                           slippage, sl_stop, tp_stop, trail, long_ok, short_ok, init_cash,
                           bench_centred, bench_rets, scales, block_len, out, block_sum,
                           block_sumsq):
    n_sym, n = close.shape
    stats = out[c]
    stats[S_BAD_ARG] = -1.0
    targets = np.empty((n_sym, n), dtype=np.int8)  # -1, 0, 1: an eighth of the traffic
    for s in range(n_sym):
        _target_path_nb(kind, c, close[s], scales[s], bank_a[s], bank_b[s], meta_a[s], meta_b[s],
                        idx_a, idx_b, par1, par2, warmup, long_ok, short_ok, targets[s])
    accts = np.zeros((n_sym, N_ACCOUNT))
    accts[:, A_SL], accts[:, A_TP] = np.nan, np.nan
    prev_target = np.zeros(n_sym)
    signals = np.zeros(4, dtype=np.bool_)
    has_sl, has_tp = not math.isnan(sl_stop), not math.isnan(tp_stop)
    has_stops = has_sl or has_tp
    cash, free_cash, cum_flow = init_cash, init_cash, 0.0
    sum_r = sum_r2 = sum_r3 = sum_r4 = down_sq = sum_value = exposed = 0.0
    cov, up, down = 0.0, 0.0, 0.0
    prev_value, peak, trough, last_peak = init_cash, init_cash, init_cash, 0
    max_dd, dd_bars, dd_invalid = 0.0, 0, False
    offset = n - block_len * (block_sum.shape[0]) if block_len > 0 else n
    blk, blk_s, blk_ss, left = 0, 0.0, 0.0, block_len
    for i in range(n):
        t = i - shift
        bar_flow, held, any_units = 0.0, 0.0, False
        for s in range(n_sym):
            # Scalars and 2-D indexing only on the per-bar path: a row view or a call taking
            # an array costs reference counting on every bar (sweep_nb's note); the account
            # row is handed to the fill only when there is an order.
            target = float(targets[s, t]) if t >= 0 else 0.0
            prev = prev_target[s]
            prev_target[s] = target
            enter_long, exit_long, enter_short, exit_short, closing = _signals_nb(prev, target,
                                                                                  shift)
            position = accts[s, A_POSITION]  # the order rule's (zeroed within tolerance)
            order_price, order_slip = price[s, i], slippage
            if position != 0 and has_stops:
                (enter_long, exit_long, enter_short, exit_short, order_price, order_slip,
                 accts[s, A_SL]) = stop_step_nb(position, closing, enter_long, exit_long,
                                                enter_short, exit_short, order_price,
                                                order_slip, accts[s, A_SL], accts[s, A_TP],
                                                sl_stop, tp_stop, has_sl, has_tp, trail,
                                                open_[s, i], high[s, i], low[s, i])
            if enter_long or exit_long or enter_short or exit_short:
                signals[0], signals[1], signals[2], signals[3] = (enter_long, exit_long,
                                                                  enter_short, exit_short)
                bad, cash, free_cash, flow = _fill_leg_nb(accts[s], cash, free_cash, signals,
                                                          size, sizing, order_price, fees,
                                                          order_slip)
                if bad >= 0:
                    stats[S_BAD_ARG] = bad
                    return
                bar_flow += flow
            # this symbol's units are final for the bar (later symbols fill only their own)
            units = accts[s, A_UNITS]
            held += units * close[s, i]
            any_units = any_units or units != 0.0
        cum_flow += bar_flow
        value = (init_cash + cum_flow) + held
        ret, r2, sum_r, sum_r2, sum_r3, sum_r4, down_sq = _moments_step_nb(
            value, prev_value, sum_r, sum_r2, sum_r3, sum_r4, down_sq)
        prev_value = value
        if ret != 0.0:
            cov += ret * bench_centred[i]
            if bench_rets[i] > 0:
                up += ret
            elif bench_rets[i] < 0:
                down += ret
        sum_value += value
        if any_units:
            exposed += 1.0
        peak, trough, last_peak, max_dd, dd_bars, dd_invalid = _drawdown_step_nb(
            value, i + 1, peak, trough, last_peak, max_dd, dd_bars, dd_invalid)
        if i >= offset:
            blk_s += ret
            blk_ss += r2
            left -= 1
            if left == 0:
                block_sum[blk, c] = blk_s
                block_sumsq[blk, c] = blk_ss
                blk, blk_s, blk_ss, left = blk + 1, 0.0, 0.0, block_len
    for k, v in ((S_SUM_R, sum_r), (S_SUM_R2, sum_r2), (S_SUM_R3, sum_r3), (S_SUM_R4, sum_r4),
                 (S_DOWN_SQ, down_sq), (S_SUM_VALUE, sum_value), (S_EXPOSED, exposed),
                 (P_COV, cov), (P_UP, up), (P_DOWN, down)):
        stats[k] = v
    for k, a in ((S_N_TRADES, A_N_TRADES), (S_WINS, A_WINS), (S_GROSS_PROFIT, A_GROSS_PROFIT),
                 (S_GROSS_LOSS, A_GROSS_LOSS), (S_PNL_SUM, A_PNL_SUM), (S_TRADED, A_TRADED),
                 (S_FEES, A_FEES)):
        total = 0.0
        for s in range(n_sym):
            total += accts[s, a]
        stats[k] = total
    stats[S_MAX_DD] = np.nan if dd_invalid else max_dd
    stats[S_DD_BARS] = dd_bars
    stats[S_FINAL] = prev_value


@njit(cache=True, parallel=True, error_model="numpy")
def sweep_portfolio_nb(kind, open_, high, low, close, price, bank_a, bank_b, meta_a, meta_b,
                       idx_a, idx_b, par1, par2, warmup, shift, size, sizing, fees, slippage,
                       sl_stop, tp_stop, trail, long_ok, short_ok, init_cash, bench_centred,
                       bench_rets, n_blocks):
    """Backtest every combination of one signal kind on a shared-cash portfolio.

    Parameters
    ----------
    kind : one of ``MA_CROSS .. MACD`` (:mod:`quantlib.backtest.sweep_nb`).
    open_, high, low, close, price : symbols x bars (``price``: the order price per bar).
    bank_a, bank_b, meta_a, meta_b : per symbol (first axis), the banks and row metadata
        :func:`quantlib.backtest.sweep_nb.sweep_signals_nb` takes for one symbol.
    idx_a, idx_b, par1, par2, warmup : per combination, as for ``sweep_signals_nb``.
    shift, size, sizing, fees, slippage, sl_stop, tp_stop, trail, long_ok, short_ok,
    init_cash : the configuration, as for ``sweep_signals_nb``.
    bench_centred, bench_rets : per bar, the benchmark's return minus its mean, and its return.
    n_blocks : CSCV blocks for the return moments (0: none).

    Returns
    -------
    ``(stats, block_sum, block_sumsq)``; ``stats`` is combinations x ``N_PSTATS``.

    Examples
    --------
    >>> import numpy as np
    >>> from quantlib.backtest import sweep_nb as snb
    >>> from quantlib.backtest.sweep_rows_nb import sma_rows_nb
    >>> px = np.vstack([np.linspace(100, 120, 60), np.linspace(50, 40, 60)])
    >>> banks = [sma_rows_nb(row, np.array([3, 9])) for row in px]
    >>> bank = np.stack([b[0] for b in banks])
    >>> meta = np.zeros((2, 2, 3)); meta[:, :, 0] = [3, 9]
    >>> meta[:, :, 2] = np.stack([b[1] for b in banks])
    >>> stats, _, _ = sweep_portfolio_nb(snb.MA_CROSS, px, px, px, px, px, bank,
    ...     np.zeros((2, 1, 1)), meta, np.zeros((2, 1, 3)), np.array([0]), np.array([1]),
    ...     np.zeros(1), np.zeros(1), np.array([8]), 1, 0.5, 0, 0.0, 0.0, np.nan, np.nan,
    ...     False, True, False, 1000.0, np.zeros(60), np.zeros(60), 0)
    >>> bool(stats[0, snb.S_FINAL] > 1000.0)  # long the rising symbol only
    True
    """
    n_combo, n = idx_a.shape[0], close.shape[1]
    block_len = n // n_blocks if n_blocks > 0 else 0
    out = np.empty((n_combo, N_PSTATS))
    scales = np.empty(close.shape[0])  # per symbol, the rows' bound scale (sweep_rows_nb)
    for s in range(close.shape[0]):
        scales[s] = max_abs_nb(close[s])
    block_sum = np.zeros((max(n_blocks, 1), n_combo))
    block_sumsq = np.zeros((max(n_blocks, 1), n_combo))
    for c in prange(n_combo):
        _simulate_portfolio_nb(kind, c, open_, high, low, close, price, bank_a, bank_b, meta_a,
                               meta_b, idx_a, idx_b, par1, par2, warmup, shift, size, sizing,
                               fees, slippage, sl_stop, tp_stop, trail, long_ok, short_ok,
                               init_cash, bench_centred, bench_rets, scales, block_len, out,
                               block_sum, block_sumsq)
    return out, block_sum, block_sumsq
