"""Fused signal sweeps: targets, fills, exits and one-pass metrics for many combinations at once.

One ``prange`` call backtests every parameter combination of a built-in signal kind on one
symbol. Each combination first computes its target path (a buffer of bars, freed when it is
done): its target comes from indicator rows computed once per distinct window in O(bars) with
an error bound (:mod:`quantlib.backtest.sweep_rows_nb`); a comparison those rows cannot decide
(a gap within the bounds: ties, near-ties) is decided by the kinds' own values at that bar
(:mod:`quantlib.core.indicators_nb`), so every target is the kind's, bit for bit. It then
walks the bars once: its orders are filled by the order rule
(:func:`quantlib.core.order_rule_nb.signal_fill_nb`, through
:mod:`quantlib.backtest.sweep_fill_nb`), and only running sums leave the loop (no bars x
combinations matrix).

The walk (:func:`_simulate_nb`) is the shared-cash portfolio's
(:mod:`quantlib.backtest.sweep_portfolio_nb`): one symbol is a portfolio of one, so both
sweeps run the same code and agree bit for bit on one symbol.

What the loop reproduces, in the backtest engine's words (``quantlib/backtest/engine.py``):

- Signals are *changes* of the clipped target (long-only turns -1 into 0, short-only +1 into
  0): entering a long target is an entry, going flat from long an exit, the mirror for shorts,
  a flip one opposite entry (a reversal). With ``shift = 1`` (next-open execution) the decision
  of bar ``t`` is filled at bar ``t + 1``'s ``price`` (the open); with ``shift = 0`` at bar
  ``t``'s own price (the close).
- Exits, as vectorbt's ``from_signals`` applies them with ``stop_entry_price="fillprice"`` and
  its default stop-limit exit: at each bar while a position is open, the stop-loss level is the
  fill price of the entry (trailing: the highest high / lowest low seen since, updated *after*
  the bar's check) times ``1 - sl`` for a long, ``1 + sl`` for a short; the take-profit level
  the entry fill times ``1 + tp`` (long) or ``1 - tp`` (short). A level the open already passed
  fills at the open, a level inside the bar's low..high fills at the level, without slippage;
  the stop-loss is checked before the take-profit, and a bar whose stop fires ignores its
  signals. A stop closes the whole position; the target must change again to re-enter. A bar
  whose open fills an order closing or reversing the position (``shift = 1``) checks the stops
  against its open alone (high = low = open): the signal exit due at the open comes first
  (the rule is stated in ``quantlib/core/stop_rule.py``).
- Equity at bar ``t`` = initial cash + cumulative cash flows (``-signed units * fill price -
  fee``) + cumulative signed units * close, as the engine sums vectorbt's order records.
- Closed trades as vectorbt's exit trades count them: a position is opened by one fill (entries
  never add), each fill that reduces it closes the reduced units at the average entry price with
  the matching share of the entry fee (a reversal splits its fee between the closed and the
  opened units); the trade still open at the end is not a closed trade.

The returns are ``E_t / E_{t-1} - 1`` with ``E_{-1}`` the initial cash, as in
:func:`quantlib.backtest.metrics.compute_metrics_frame` with ``init_cash``; the row ``out[c]``
holds the sums that function's definitions are computed from (indexed by the ``S_*``
constants), plus the per-block sums of CSCV (:class:`quantlib.optimize.stats.ReturnMoments`).
"""

from __future__ import annotations

import math

import numpy as np

from quantlib.backtest.sweep_fill_nb import (
    A_FEES,
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
from quantlib.backtest.sweep_rows_nb import (
    U2,
    ema_err_nb,
    exact_ema_nb,
    exact_macd_nb,
    exact_rsi_nb,
    exact_sma_nb,
    exact_std_nb,
    max_abs_nb,
)
from quantlib.core.indicators_nb import fir_weights_nb, hold_nb
from quantlib.jit import njit, prange

# kinds the loop knows (quantlib.core.kinds)
MA_CROSS, EMA_CROSS, RSI_REVERSION, BOLLINGER, DONCHIAN, MACD = 0, 1, 2, 3, 4, 5

# columns of the per-combination output
S_SUM_R = 0  # sum of bar returns
S_SUM_R2 = 1  # sum of squared returns
S_SUM_R3 = 2
S_SUM_R4 = 3
S_DOWN_SQ = 4  # sum of min(r, 0)^2
S_MAX_DD = 5  # min of E / running peak - 1 over the path (initial cash first); NaN if undefined
S_DD_BARS = 6  # longest run below the previous peak, in path rows
S_SUM_VALUE = 7  # sum of the equity values (not the initial cash)
S_FINAL = 8  # last equity value
S_EXPOSED = 9  # bars ending with a non-zero position
S_N_TRADES = 10  # closed trades (finite pnl)
S_WINS = 11  # closed trades with pnl > 0
S_GROSS_PROFIT = 12
S_GROSS_LOSS = 13  # positive
S_PNL_SUM = 14
S_TRADED = 15  # sum of units * fill price
S_FEES = 16
S_BAD_ARG = 17  # -1, or the order rule's BAD_INPUT argument index (a broken configuration)
N_STATS = 18
# with a benchmark (the portfolio sweep), three sums follow: with b the benchmark's bar return
P_COV = N_STATS  # sum of r_t * (b_t - mean b)
P_UP = N_STATS + 1  # sum of r_t over bars with b_t > 0
P_DOWN = N_STATS + 2  # sum of r_t over bars with b_t < 0
N_PSTATS = N_STATS + 3

# columns of the per-row metadata of a bank (meta_a, meta_b)
M_WINDOW, M_ALPHA, M_ERR = 0, 1, 2

@njit(cache=True)
def _level_nb(up, down, t, warmup):
    if t < warmup:
        return 0.0
    if up:
        return 1.0
    if down:
        return -1.0
    return 0.0


@njit(cache=True)
def _donchian_targets_nb(c, bank_a, bank_b, idx_a, par1, warmup, close):
    """Donchian's whole target path (its breakout is held per combination): the kind's rule
    on the exact rolling high/low rows."""
    n = close.shape[0]
    upper, lower = bank_a[idx_a[c]], bank_b[idx_a[c]]
    event = np.full(n, np.nan)
    for t in range(1, n):  # the channel of the bars before t
        if close[t] > upper[t - 1]:
            event[t] = 1.0
        elif close[t] < lower[t - 1]:
            event[t] = -1.0
    held = hold_nb(event, int(par1[c]) - 1)
    held[: min(warmup[c], n)] = 0.0
    return held


@njit(cache=True)
def _exact_level_nb(kind, close, t, meta_a, meta_b, ia, ib, p1, p2):
    """The target at bar ``t`` from the kind's own indicator values (the approximate rows
    could not decide it: see :mod:`quantlib.backtest.sweep_rows_nb`)."""
    wa, wb = int(meta_a[ia, M_WINDOW]), int(meta_a[ib, M_WINDOW])
    if kind == MA_CROSS or kind == EMA_CROSS:
        if t - wb + 1 < 0 or t - wa + 1 < 0:
            return 0.0
        if kind == MA_CROSS:
            a, b = exact_sma_nb(close, t, wa), exact_sma_nb(close, t, wb)
        else:
            a = exact_ema_nb(close, t, meta_a[ia, M_ALPHA], wa)
            b = exact_ema_nb(close, t, meta_a[ib, M_ALPHA], wb)
        return _level_nb(a > b, a < b, t, 0)
    if kind == RSI_REVERSION:
        if t - wa < 0:
            return 0.0
        v = exact_rsi_nb(close, t, meta_a[ia, M_ALPHA], wa)
        return _level_nb(v < p1, v > p2, t, 0)
    if kind == BOLLINGER:
        if t - wa + 1 < 0:
            return 0.0
        mid, std = exact_sma_nb(close, t, wa), exact_std_nb(close, t, wa)
        return _level_nb(close[t] < mid - p1 * std, close[t] > mid + p1 * std, t, 0)
    # MACD
    len_g = int(p2)
    if t - len_g - wb + 2 < 0:
        return 0.0
    line, signal_line = exact_macd_nb(close, t, meta_a[ia, M_ALPHA], wa, meta_a[ib, M_ALPHA],
                                      wb, p1, len_g)
    return _level_nb(line > signal_line, line < signal_line, t, 0)


@njit(cache=True)
def _tolerance_nb(kind, meta_a, meta_b, ia, ib, p1, p2, scale):
    """Gap below which two approximate values (or a value and a threshold) cannot decide a
    comparison: the rows' bounds plus the roundings of the kernel's own arithmetic."""
    if kind == MA_CROSS or kind == EMA_CROSS:
        return meta_a[ia, M_ERR] + meta_a[ib, M_ERR] + 4.0 * U2 * scale
    if kind == BOLLINGER:
        return meta_a[ia, M_ERR] + p1 * meta_b[ib, M_ERR] + 8.0 * U2 * (1.0 + p1) * scale
    if kind == MACD:
        e_line = meta_a[ia, M_ERR] + meta_a[ib, M_ERR] + 4.0 * U2 * scale
        e_signal = e_line + ema_err_nb(p1, p2, 2.0 * scale + e_line)
        return e_line + e_signal + 16.0 * U2 * scale
    return 0.0


@njit(cache=True)
def _clip_nb(target, long_ok, short_ok):
    if (target > 0 and not long_ok) or (target < 0 and not short_ok):
        return 0.0
    return target


@njit(cache=True)
def _combo_rows_nb(kind, c, bank_a, bank_b, meta_a, idx_a, idx_b, par1, par2):
    """What the per-bar target decision reads of combination ``c`` on one symbol: ``(ia, ib, row_a,
    row_b, p1, p2, len_g, w_g, q_g, c_first, c_last)``, the last five MACD's signal line (the
    truncated EMA of the line, by recursion from its first value; unused by other kinds)."""
    ia, ib = idx_a[c], idx_b[c]
    row_a = bank_a[ia]
    row_b = bank_a[ib] if kind == MA_CROSS or kind == EMA_CROSS or kind == MACD else bank_b[ib]
    p1, p2 = par1[c], par2[c]
    len_g = int(p2) if kind == MACD else 1
    w_g = fir_weights_nb(p1, len_g) if kind == MACD else np.ones(1)
    return ia, ib, row_a, row_b, p1, p2, len_g, w_g, 1.0 - p1, w_g[0], w_g[len_g - 1] * (1.0 - p1)


@njit(cache=True, inline="always")
def _rows_target_nb(kind, a, b, x, tol, p1, p2):
    """The target the approximate rows decide at one bar (any kind but Donchian), NaN when the
    gap is within their bound (the caller then asks :func:`_exact_level_nb`). Scalars only: a
    call per bar taking arrays costs reference counting on every bar.

    ``a, b``: the rows' values at the bar (fast/slow average, RSI and its bound, Bollinger
    middle and std, MACD line and signal line); ``x`` the bar's close; ``tol`` the bound of
    :func:`_tolerance_nb`."""
    if kind == RSI_REVERSION:
        if abs(a - p1) > b and abs(a - p2) > b:
            return _level_nb(a < p1, a > p2, 0, 0)
        return np.nan
    if kind == BOLLINGER:
        lower, upper = a - p1 * b, a + p1 * b
        if abs(x - lower) > tol and abs(x - upper) > tol:
            return _level_nb(x < lower, x > upper, 0, 0)
        return np.nan
    d = a - b  # MA/EMA cross, MACD
    if abs(d) > tol:
        return 1.0 if d > 0 else -1.0
    return np.nan


@njit(cache=True)
def _macd_first_nb(row_a, row_b, t, w_g, len_g):
    """MACD's first signal-line value at bar ``t``: the truncated EMA of the line."""
    total = 0.0
    for k in range(len_g):
        total += w_g[k] * (row_a[t - k] - row_b[t - k])
    return total


@njit(cache=True, inline="always")
def _signals_nb(prev_target, target, shift):
    """The signals of a change of clipped target: ``(enter_long, exit_long, enter_short,
    exit_short, closing)``, ``closing`` when an order at this bar's open (``shift = 1``) closes
    or reverses the position, so that the bar's stops see only the open."""
    closing = shift == 1 and ((prev_target > 0 and not target > 0)
                              or (prev_target < 0 and not target < 0))
    return (target > 0 and not prev_target > 0, target == 0 and prev_target > 0,
            target < 0 and not prev_target < 0, target == 0 and prev_target < 0, closing)


@njit(cache=True, inline="always")
def _moments_step_nb(value, prev_value, sum_r, sum_r2, sum_r3, sum_r4, down_sq):
    """One bar's return ``value / prev_value - 1`` into the power sums: ``(ret, ret ** 2,
    sum_r, sum_r2, sum_r3, sum_r4, down_sq)``.

    An unchanged value is a return of exactly 0 (x / x == 1): the division and the zero terms
    of the sums are skipped, which leaves every sum bit-identical."""
    ret = 0.0 if value == prev_value and value != 0.0 else value / prev_value - 1.0
    r2 = ret * ret
    if ret != 0.0:
        sum_r += ret
        sum_r2 += r2
        sum_r3 += r2 * ret
        sum_r4 += r2 * r2
        if ret < 0.0:
            down_sq += r2
    return ret, r2, sum_r, sum_r2, sum_r3, sum_r4, down_sq


@njit(cache=True, inline="always")
def _drawdown_step_nb(value, row, peak, trough, last_peak, max_dd, dd_bars, dd_invalid):
    """One equity value (at path row ``row``: the initial cash is row 0) into the drawdown
    state: ``(peak, trough, last_peak, max_dd, dd_bars, dd_invalid)``."""
    if value >= peak:
        peak, trough = value, value
        last_peak = row
    elif value < peak:
        # Under one peak the drawdown is deepest at the lowest value (a rounded division is
        # monotone): divide only at a new low, the same minimum bit for bit.
        if value < trough:
            trough = value
            dd = value / peak - 1.0
            if dd != dd:
                dd_invalid = True
            elif dd < max_dd:
                max_dd = dd
    else:  # NaN equity: numpy's min would propagate it
        dd_invalid = True
    if row - last_peak > dd_bars:
        dd_bars = row - last_peak
    return peak, trough, last_peak, max_dd, dd_bars, dd_invalid


@njit(cache=True)
def _rows_targets_nb(kind, c, close, scale, bank_a, bank_b, meta_a, meta_b, idx_a, idx_b, par1,
                     par2, warmup, out):
    """The target of combination ``c`` (any kind but Donchian) at every bar, into ``out``: the
    approximate rows decide unless the gap is within their bound (see :func:`_rows_target_nb`
    for why its arguments are scalars)."""
    ia, ib, row_a, row_b, p1, p2, len_g, w_g, q_g, c_first, c_last = _combo_rows_nb(
        kind, c, bank_a, bank_b, meta_a, idx_a, idx_b, par1, par2)
    tol = _tolerance_nb(kind, meta_a, meta_b, ia, ib, p1, p2, scale)
    warm = warmup[c]
    signal_line = np.nan
    for t in range(close.shape[0]):
        if t < warm:
            out[t] = 0
            continue
        a, b = row_a[t], row_b[t]
        if kind == MACD:  # the signal line by recursion from its first value
            line = a - b
            b = (_macd_first_nb(row_a, row_b, t, w_g, len_g) if math.isnan(signal_line)
                 else q_g * signal_line + c_first * line
                 - c_last * (row_a[t - len_g] - row_b[t - len_g]))
            a, signal_line = line, b
        target = _rows_target_nb(kind, a, b, close[t], tol, p1, p2)
        if math.isnan(target):
            target = _exact_level_nb(kind, close, t, meta_a, meta_b, ia, ib, p1, p2)
        out[t] = target


@njit(cache=True)
def _target_path_nb(kind, c, close, scale, banks, combos, long_ok, short_ok, out):
    """The clipped target of combination ``c`` at every bar of one symbol, into ``out``
    (``banks``: that symbol's); a trend mask row, if the combination has one, gates it first
    (``htf_trend``: a long target stands only where the row is +1, a short one where it is -1).
    """
    bank_a, bank_b, meta_a, meta_b = banks
    idx_a, idx_b, par1, par2, warmup, mask, idx_m = combos
    if kind == DONCHIAN:  # its breakout is held per combination: the whole path at once
        out[:] = _donchian_targets_nb(c, bank_a, bank_b, idx_a, par1, warmup, close)
    else:
        _rows_targets_nb(kind, c, close, scale, bank_a, bank_b, meta_a, meta_b, idx_a, idx_b,
                         par1, par2, warmup, out)
    gated = idx_m[c] >= 0
    mask_row = mask[max(idx_m[c], 0)]
    for t in range(close.shape[0]):
        target = float(out[t])
        if gated and target != 0.0:
            m = mask_row[t]
            if (target > 0.0 and not m > 0.0) or (target < 0.0 and not m < 0.0):
                target = 0.0
        out[t] = _clip_nb(target, long_ok, short_ok)


@njit(cache=True, error_model="numpy")
def _simulate_nb(kind, c, market, banks, combos, rule, outputs):
    """Combination ``c`` on every symbol of ``market`` (one shared cash account), into row
    ``c`` of the outputs (see :func:`sweep_signals_nb` and
    :func:`quantlib.backtest.sweep_portfolio_nb.sweep_portfolio_nb`).

    The arguments are tuples (numba's parallel loops do not take named tuples), unpacked by
    name below: ``market`` and ``banks`` hold arrays per symbol (first axis), one symbol being a
    portfolio of one; ``scales`` is per symbol the rows' bound scale, the benchmark arrays are
    empty without a benchmark; ``combos`` holds the per-combination arrays (``mask`` and
    ``idx_m`` gate the targets of a single symbol: ``htf_trend``); ``outputs`` is
    :func:`outputs_nb`'s."""
    open_, high, low, close, price, scales, bench_centred, bench_rets = market
    (shift, size, sizing, fees, slippage, sl_stop, tp_stop, trail, long_ok, short_ok,
     init_cash) = rule
    out, block_sum, block_sumsq, block_len = outputs
    bank_a, bank_b, meta_a, meta_b = banks
    n_sym, n = close.shape
    stats = out[c]
    stats[S_BAD_ARG] = -1.0
    targets = np.empty((n_sym, n), dtype=np.int8)  # -1, 0, 1: an eighth of the traffic
    for s in range(n_sym):
        _target_path_nb(kind, c, close[s], scales[s], (bank_a[s], bank_b[s], meta_a[s],
                        meta_b[s]), combos, long_ok, short_ok, targets[s])
    accts = np.zeros((n_sym, N_ACCOUNT))
    accts[:, A_SL], accts[:, A_TP] = np.nan, np.nan
    prev_target = np.zeros(n_sym)
    has_sl, has_tp = not math.isnan(sl_stop), not math.isnan(tp_stop)
    has_stops, has_bench = has_sl or has_tp, bench_rets.shape[0] > 0
    cash, free_cash, cum_flow = init_cash, init_cash, 0.0
    sum_r = sum_r2 = sum_r3 = sum_r4 = down_sq = sum_value = exposed = 0.0
    cov, up, down = 0.0, 0.0, 0.0
    prev_value, peak, trough, last_peak = init_cash, init_cash, init_cash, 0
    max_dd, dd_bars, dd_invalid = 0.0, 0, False
    offset = n - block_len * (block_sum.shape[0]) if block_len > 0 else n
    blk, blk_s, blk_ss, left = 0, 0.0, 0.0, block_len
    for i in range(n):
        t = i - shift  # the bar whose decision fills at bar i
        bar_flow, held, any_units = 0.0, 0.0, False
        for s in range(n_sym):
            # Scalars and 2-D indexing only on the per-bar path (a row view costs reference
            # counting). Each symbol sees the cash the symbols before it left.
            target = float(targets[s, t]) if t >= 0 else 0.0
            prev = prev_target[s]
            prev_target[s] = target
            position = accts[s, A_POSITION]  # the order rule's (zeroed within tolerance)
            if target != prev or (position != 0 and has_stops):  # else no order, no stop
                enter_long, exit_long, enter_short, exit_short, closing = _signals_nb(
                    prev, target, shift)
                order_price, order_slip = price[s, i], slippage
                if position != 0 and has_stops:
                    sl_level = accts[s, A_SL]
                    (enter_long, exit_long, enter_short, exit_short, order_price, order_slip,
                     moved) = stop_step_nb(position, closing, enter_long, exit_long, enter_short,
                                           exit_short, order_price, order_slip, sl_level,
                                           accts[s, A_TP], sl_stop, tp_stop, has_sl, has_tp,
                                           trail, open_[s, i], high[s, i], low[s, i])
                    if moved != sl_level:  # a trailing stop-loss moved
                        accts[s, A_SL] = moved
                if enter_long or exit_long or enter_short or exit_short:
                    bad, cash, free_cash, flow = account_fill_nb(
                        accts, s, cash, free_cash, enter_long, exit_long, enter_short,
                        exit_short, size, sizing, order_price, fees, order_slip)
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
        if has_bench and ret != 0.0:
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
            if left == 0:  # a block ends: flush its sums
                block_sum[blk, c] = blk_s
                block_sumsq[blk, c] = blk_ss
                blk, blk_s, blk_ss, left = blk + 1, 0.0, 0.0, block_len
    for k, v in ((S_SUM_R, sum_r), (S_SUM_R2, sum_r2), (S_SUM_R3, sum_r3), (S_SUM_R4, sum_r4),
                 (S_DOWN_SQ, down_sq), (S_SUM_VALUE, sum_value), (S_EXPOSED, exposed)):
        stats[k] = v
    if has_bench:
        stats[P_COV], stats[P_UP], stats[P_DOWN] = cov, up, down
    for k, a in ((S_N_TRADES, A_N_TRADES), (S_WINS, A_WINS), (S_GROSS_PROFIT, A_GROSS_PROFIT),
                 (S_GROSS_LOSS, A_GROSS_LOSS), (S_PNL_SUM, A_PNL_SUM), (S_TRADED, A_TRADED),
                 (S_FEES, A_FEES)):
        total = accts[0, a]
        for s in range(1, n_sym):
            total += accts[s, a]
        stats[k] = total
    stats[S_MAX_DD] = np.nan if dd_invalid else max_dd
    stats[S_DD_BARS] = dd_bars
    stats[S_FINAL] = prev_value


@njit(cache=True)
def outputs_nb(n_combo, n, n_blocks, width):
    """A sweep's outputs: ``(stats, block_sum, block_sumsq, block_len)``, ``stats``
    combinations x ``width`` columns (see :func:`sweep_signals_nb`)."""
    block_len = n // n_blocks if n_blocks > 0 else 0
    out = np.empty((n_combo, width))
    block_sum = np.zeros((max(n_blocks, 1), n_combo))
    block_sumsq = np.zeros((max(n_blocks, 1), n_combo))
    return out, block_sum, block_sumsq, block_len


@njit(cache=True)
def _one_symbol_nb(open_, high, low, close, price, bank_a, bank_b, meta_a, meta_b, idx_a, idx_b,
                   par1, par2, warmup, mask, idx_m, shift, size, sizing, fees, slippage, sl_stop,
                   tp_stop, trail, long_ok, short_ok, init_cash, n_blocks):
    """:func:`sweep_signals_nb`'s arguments as :func:`_simulate_nb` takes them: a portfolio of
    one symbol (views with a first axis of 1, no copies) without a benchmark."""
    none = np.zeros(0)
    market = (np.expand_dims(open_, 0), np.expand_dims(high, 0), np.expand_dims(low, 0),
              np.expand_dims(close, 0), np.expand_dims(price, 0), np.full(1, max_abs_nb(close)),
              none, none)
    banks = (np.expand_dims(bank_a, 0), np.expand_dims(bank_b, 0), np.expand_dims(meta_a, 0),
             np.expand_dims(meta_b, 0))
    rule = (shift, size, sizing, fees, slippage, sl_stop, tp_stop, trail, long_ok, short_ok,
            init_cash)
    return (market, banks, (idx_a, idx_b, par1, par2, warmup, mask, idx_m), rule,
            outputs_nb(idx_a.shape[0], close.shape[0], n_blocks, N_STATS))


@njit(cache=True, parallel=True, error_model="numpy")
def sweep_signals_nb(kind, *args):
    """Backtest every combination of one signal kind on one symbol (see the module docstring).

    The arguments after ``kind`` are those of :func:`_one_symbol_nb`, in its order (named once
    there: the serial twin takes the same).

    Parameters
    ----------
    kind : one of ``MA_CROSS .. MACD``.
    open_, high, low, close : the bars; ``price`` the order price per bar (open or close).
    bank_a, bank_b : indicator rows (distinct windows x bars) of
        :mod:`quantlib.backtest.sweep_rows_nb`: SMA/EMA/RSI/Bollinger middle or Donchian
        rolling high; Bollinger std, the RSI's bound per bar or Donchian rolling low (unused:
        1 x 1).
    meta_a, meta_b : per row of the banks, ``(window or length, alpha, bound)``
        (``M_WINDOW, M_ALPHA, M_ERR``): what the exact path recomputes, and the row's bound.
    idx_a, idx_b : per combination, rows of the banks (fast/slow, or the window in both).
    par1, par2 : per combination, RSI lower/upper, Bollinger ``k``, Donchian window, MACD
        signal-line ``alpha`` and length.
    warmup : per combination, bars whose target is forced flat.
    mask, idx_m : trend masks (rows x bars: +1 up, -1 down, 0 unknown) and per combination
        the row gating its targets (``htf_trend``: a long target stands only where the row
        is +1, a short one where it is -1), or -1 for none (``mask`` then 1 x 1).
    shift : 1 = a decision fills at the next bar's price, 0 = at the same bar's.
    size, sizing, fees, slippage : entry size and the order rule's sizing, costs as fractions.
    sl_stop, tp_stop : stop distances (NaN = none); ``trail``: the stop-loss trails.
    long_ok, short_ok : the directions the configuration trades.
    init_cash : starting cash per combination.
    n_blocks : CSCV blocks for the return moments (0: none).

    Returns
    -------
    ``(stats, block_sum, block_sumsq)``: ``stats`` is combinations x ``N_STATS``; the block
    arrays are ``n_blocks`` x combinations (the first ``n mod n_blocks`` returns are left out).
    """
    market, banks, combos, rule, outputs = _one_symbol_nb(*args)
    stats, block_sum, block_sumsq, _ = outputs
    for c in prange(stats.shape[0]):
        _simulate_nb(kind, c, market, banks, combos, rule, outputs)
    return stats, block_sum, block_sumsq


@njit(cache=True, error_model="numpy")
def sweep_signals_serial_nb(kind, *args):
    """:func:`sweep_signals_nb` (the same arguments and results) on the calling thread: one
    optuna trial does not wake the thread pool (whose start-up costs more than a single
    combination)."""
    market, banks, combos, rule, outputs = _one_symbol_nb(*args)
    stats, block_sum, block_sumsq, _ = outputs
    for c in range(stats.shape[0]):
        _simulate_nb(kind, c, market, banks, combos, rule, outputs)
    return stats, block_sum, block_sumsq
