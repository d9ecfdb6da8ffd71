"""Numba kernel of the grid-trading engine (numpy/numba only; pandas lives in ``grid.py``).

The simulation rule (the spec the plain-Python reference in the tests is written from):

Levels
    ``n`` levels ``L_0 < ... < L_{n-1}`` between ``lower`` and ``upper``:
    arithmetic ``L_j = lower + j * (upper - lower) / (n - 1)``;
    geometric ``L_j = lower * (upper / lower) ** (j / (n - 1))``;
    fibonacci ``L_j = lower + r_j * (upper - lower)`` with ratios ``r`` the first ``n`` entries of
    ``FIB_RATIOS_PRIORITY`` (0, 1, .5, .382, .618, .236, .786 - the 7 classic retracement ratios -
    then phi**-k and 1 - phi**-k for k = 4, 5, ... which crowd the edges), sorted ascending;
    volatility ``L_j = centre + (j - (n - 1) / 2) * k * ATR`` (see *Volatility grid*).
Orders
    Each level ``i < n - 1`` holding nothing carries a buy limit while the price is above it;
    a filled buy of ``order_value / L_i`` base units at level ``i`` places a sell of that
    quantity at ``L_{i+1}``; when that sell fills, level ``i`` is empty again and its buy rests
    again (price is then above it). The top level never buys. No initial inventory.
Intrabar path
    Bar ``t`` is walked as ``prev_close -> open -> low -> high -> close`` when
    ``close >= open`` and ``prev_close -> open -> high -> low -> close`` otherwise (bar 0 starts
    at its open). The first leg is the *gap*: every order it crosses fills at the open. On the
    other legs a level is filled when touched: a buy at ``L`` fills on a falling leg ``a -> b``
    with ``b <= L < a``, a sell at ``L`` on a rising leg with ``a < L <= b``, at the level price,
    in the order the leg meets them. Buys and sells filled on one leg can fill their follow-up
    order on a later leg of the same bar.
Costs
    Buy execution price ``p * (1 + slippage)``, sell ``p * (1 - slippage)`` (slippage applied to
    limit fills too: conservative); fee ``fee_rate * qty * exec_price``. A buy whose
    ``value + fee`` exceeds cash is not filled (no leverage); it stays armed.
Stop-out (optional, ``stop_margin >= 0``)
    Thresholds ``S_low = L_0 * (1 - margin)``, ``S_high = L_{n-1} * (1 + margin)``. When a leg
    reaches a threshold (after the level fills the leg meets first) or a bar opens beyond one,
    all inventory is sold at the threshold (the open for the gap leg) and the grid stops for good.
Active mask
    ``active[t]`` must be known before bar ``t`` opens (shift a close-based regime signal by one
    bar). On an inactive bar buys are cancelled (none fill, gap included); resting sells stay
    and may fill, inventory is kept, the stop-out still applies; buys re-arm on the next active
    bar below the price.
Volatility grid
    ``ATR_t`` = mean true range of bars ``t-p .. t-1`` (TR_0 = high - low; TR_j uses close_{j-1}),
    so it exists from bar ``p`` on and never sees bar ``t``. At the open of bar ``t`` (after the
    gap leg) a grid holding no inventory is rebuilt, centred on ``open_t`` with spacing
    ``k * ATR_t`` (only if > 0), when no grid exists yet or the open lies outside ``[L_0, L_{n-1}]``. A grid
    holding inventory is never moved (its sells must stay valid). Levels <= 0 never fill.
Outputs
    Per bar: cash, inventory (base units), equity ``cash + inventory * close``; a fill log.

State layout (so the live runner steps the very same code one closed bar at a time):
``params`` row indexed by ``P_*``, scalar ``state`` indexed by ``S_*``, per-level ``levels`` and
``holding`` arrays and a true-range ring buffer ``tr_buf``.
"""

from __future__ import annotations

import numpy as np

from quantlib.jit import njit, prange

# spacing modes
MODE_ARITHMETIC = 0
MODE_GEOMETRIC = 1
MODE_FIBONACCI = 2
MODE_VOLATILITY = 3

# params row
P_MODE = 0
P_LOWER = 1
P_UPPER = 2
P_N_LEVELS = 3
P_ORDER_VALUE = 4
P_FEE = 5
P_SLIPPAGE = 6
P_STOP_MARGIN = 7  # < 0: no stop-out
P_ATR_K = 8
P_ATR_PERIOD = 9
N_PARAMS = 10

# scalar state
S_CASH = 0
S_STOPPED = 1
S_HAS_GRID = 2
S_PREV_CLOSE = 3  # NaN before the first bar
S_N_BARS = 4  # bars processed so far
S_N_FILLS = 5  # fills so far (may exceed the log capacity: the wrapper then retries)
S_FEES = 6
S_N_ACTIVE_LEVELS = 7
S_INVENTORY = 8  # sum of holding, recomputed (same order) after any bar with fills
N_STATE = 9

_PHI = (1.0 + 5.0**0.5) / 2.0


def _fib_priority(n_max: int = 64) -> np.ndarray:
    ratios = [0.0, 1.0, 0.5, 0.382, 0.618, 0.236, 0.786]
    k = 4
    while len(ratios) < n_max:
        ratios.append(_PHI**-k)
        ratios.append(1.0 - _PHI**-k)
        k += 1
    return np.array(ratios[:n_max])


FIB_RATIOS_PRIORITY = _fib_priority()
MAX_FIB_LEVELS = len(FIB_RATIOS_PRIORITY)


@njit(cache=True)
def grid_levels_nb(mode, lower, upper, n, out):
    """Write the ``n`` fixed-grid levels of ``mode`` between ``lower`` and ``upper`` into ``out``."""
    if mode == MODE_ARITHMETIC:
        step = (upper - lower) / (n - 1)
        for j in range(n):
            out[j] = lower + j * step
    elif mode == MODE_GEOMETRIC:
        ratio = upper / lower
        for j in range(n):
            out[j] = lower * ratio ** (j / (n - 1))
    else:
        ratios = np.sort(FIB_RATIOS_PRIORITY[:n])
        for j in range(n):
            out[j] = lower + ratios[j] * (upper - lower)


@njit(cache=True, aot="void(f8, f8, i8, f8[:])")
def vol_levels_nb(centre, spacing, n, out):
    """Volatility grid: ``centre + (j - (n - 1) / 2) * spacing``."""
    half = (n - 1) / 2.0
    for j in range(n):
        out[j] = centre + (j - half) * spacing


@njit(cache=True, aot="void(f8[:], f8[:], f8[:], f8[:], f8[:], f8)")
def grid_init_nb(params, state, levels, holding, tr_buf, init_cash):
    """Reset one combination's state before its first bar."""
    state[:] = 0.0
    state[S_CASH] = init_cash
    state[S_PREV_CLOSE] = np.nan
    holding[:] = 0.0
    tr_buf[:] = 0.0
    levels[:] = np.nan
    n = int(params[P_N_LEVELS])
    state[S_N_ACTIVE_LEVELS] = n
    if int(params[P_MODE]) != MODE_VOLATILITY:
        grid_levels_nb(int(params[P_MODE]), params[P_LOWER], params[P_UPPER], n, levels)
        state[S_HAS_GRID] = 1.0


@njit(cache=True)
def _record_nb(state, bar, side, price, size, fee, level, fill_bar, fill_side, fill_price,
               fill_size, fill_fee, fill_level):
    k = int(state[S_N_FILLS])
    if k < fill_bar.shape[0]:
        fill_bar[k] = bar
        fill_side[k] = side
        fill_price[k] = price
        fill_size[k] = size
        fill_fee[k] = fee
        fill_level[k] = level
    state[S_N_FILLS] = k + 1
    state[S_FEES] += fee


@njit(cache=True)
def _flatten_nb(price, bar, params, state, holding, n, fill_bar, fill_side, fill_price,
                fill_size, fill_fee, fill_level):
    qty = 0.0
    for i in range(n):
        qty += holding[i]
        holding[i] = 0.0
    if qty > 0.0:
        px = price * (1.0 - params[P_SLIPPAGE])
        value = qty * px
        fee = value * params[P_FEE]
        state[S_CASH] = state[S_CASH] + value - fee
        _record_nb(state, bar, -1, px, qty, fee, -1, fill_bar, fill_side, fill_price,
                   fill_size, fill_fee, fill_level)
    state[S_STOPPED] = 1.0


@njit(cache=True)
def _leg_nb(a, b, gap, active, bar, params, state, levels, holding, fill_bar, fill_side,
            fill_price, fill_size, fill_fee, fill_level):
    """Walk one monotone leg of the intrabar path from ``a`` to ``b``."""
    if state[S_STOPPED] != 0.0 or state[S_HAS_GRID] == 0.0 or a == b:
        return
    n = int(state[S_N_ACTIVE_LEVELS])
    margin = params[P_STOP_MARGIN]
    slip = params[P_SLIPPAGE]
    fee_rate = params[P_FEE]
    if b < a:
        # falling leg: buys met from the top down
        if active:
            for i in range(n - 2, -1, -1):
                lvl = levels[i]
                if lvl < a and lvl >= b and holding[i] == 0.0:
                    px = (b if gap else lvl) * (1.0 + slip)
                    qty = params[P_ORDER_VALUE] / lvl
                    value = qty * px
                    fee = value * fee_rate
                    if value + fee <= state[S_CASH]:
                        state[S_CASH] = state[S_CASH] - value - fee
                        holding[i] = qty
                        _record_nb(state, bar, 1, px, qty, fee, i, fill_bar, fill_side,
                                   fill_price, fill_size, fill_fee, fill_level)
        if margin >= 0.0:
            stop = levels[0] * (1.0 - margin)
            if stop < a and stop >= b:
                _flatten_nb(b if gap else stop, bar, params, state, holding, n, fill_bar,
                            fill_side, fill_price, fill_size, fill_fee, fill_level)
    else:
        # rising leg: sells met from the bottom up; the sell of level i rests at L_{i+1}
        for j in range(1, n):
            lvl = levels[j]
            if lvl > a and lvl <= b and holding[j - 1] > 0.0:
                qty = holding[j - 1]
                px = (b if gap else lvl) * (1.0 - slip)
                value = qty * px
                fee = value * fee_rate
                state[S_CASH] = state[S_CASH] + value - fee
                holding[j - 1] = 0.0
                _record_nb(state, bar, -1, px, qty, fee, j - 1, fill_bar, fill_side,
                           fill_price, fill_size, fill_fee, fill_level)
        if margin >= 0.0:
            stop = levels[n - 1] * (1.0 + margin)
            if stop > a and stop <= b:
                _flatten_nb(b if gap else stop, bar, params, state, holding, n, fill_bar,
                            fill_side, fill_price, fill_size, fill_fee, fill_level)


@njit(cache=True, inline="always")
def _quiet_bar_nb(lo, hi, state, levels, margin):
    # True when no level and no stop threshold lies in [lo, hi]: nothing can happen this bar.
    n = int(state[S_N_ACTIVE_LEVELS])
    if margin >= 0.0:
        if levels[0] * (1.0 - margin) >= lo or levels[n - 1] * (1.0 + margin) <= hi:
            return False
    # first level >= lo (binary search; levels are sorted)
    left = 0
    right = n
    while left < right:
        mid = (left + right) // 2
        if levels[mid] < lo:
            left = mid + 1
        else:
            right = mid
    return left == n or levels[left] > hi


@njit(cache=True)
def inventory_nb(holding, n):
    """Base units held across levels."""
    total = 0.0
    for i in range(n):
        total += holding[i]
    return total


# inline="always": a real call per bar passes 11 arrays and touches shared reference counts
# (row views of the fill logs), which costs more than a quiet bar's whole work
@njit(cache=True, inline="always",
      aot="void(f8, f8, f8, f8, b1, i8, f8[:], f8[:], f8[:], f8[:], f8[:], "
          "i8[:], i1[:], f8[:], f8[:], f8[:], i8[:])")
def grid_step_nb(o, h, lo, c, active, bar, params, state, levels, holding, tr_buf, fill_bar,
                 fill_side, fill_price, fill_size, fill_fee, fill_level):
    """Advance one combination by one closed bar ``(o, h, lo, c)``; see the module doc.

    Mutates ``state``, ``levels``, ``holding``, ``tr_buf`` and appends to the fill log arrays
    (``state[S_N_FILLS]`` counts fills, including any beyond the arrays' capacity).
    """
    prev = state[S_PREV_CLOSE]
    first = np.isnan(prev)
    mode = int(params[P_MODE])
    n = int(state[S_N_ACTIVE_LEVELS])
    margin = params[P_STOP_MARGIN]
    fills_before = state[S_N_FILLS]
    path_start = o if first else prev
    # Fast path: with no level and no stop threshold inside the bar's span nothing can fill, and
    # a volatility grid is only rebuilt when flat with the open outside it (or not built yet).
    busy = state[S_STOPPED] == 0.0
    if busy and state[S_HAS_GRID] != 0.0 and _quiet_bar_nb(min(lo, path_start),
                                                             max(h, path_start), state, levels,
                                                             margin):
        busy = (mode == MODE_VOLATILITY and state[S_INVENTORY] == 0.0
                and (o < levels[0] or o > levels[n - 1]))
    if busy:
        if not first:
            _leg_nb(prev, o, True, active, bar, params, state, levels, holding, fill_bar,
                    fill_side, fill_price, fill_size, fill_fee, fill_level)
        if mode == MODE_VOLATILITY and state[S_STOPPED] == 0.0:
            period = int(params[P_ATR_PERIOD])
            if state[S_N_BARS] >= period:
                flat = True
                for i in range(n):
                    if holding[i] != 0.0:
                        flat = False
                        break
                outside = state[S_HAS_GRID] == 0.0 or o < levels[0] or o > levels[n - 1]
                if flat and outside:
                    # ring buffer slots of bars t-p .. t-1, summed in chronological order
                    nb = int(state[S_N_BARS])
                    total = 0.0
                    for q in range(nb - period, nb):
                        total += tr_buf[q % tr_buf.shape[0]]
                    spacing = params[P_ATR_K] * (total / period)
                    if spacing > 0.0:  # a zero-width grid (flat history) is not built
                        vol_levels_nb(o, spacing, n, levels)
                        state[S_HAS_GRID] = 1.0
        if state[S_STOPPED] == 0.0 and state[S_HAS_GRID] != 0.0 and margin >= 0.0:
            if o < levels[0] * (1.0 - margin) or o > levels[n - 1] * (1.0 + margin):
                _flatten_nb(o, bar, params, state, holding, n, fill_bar, fill_side,
                            fill_price, fill_size, fill_fee, fill_level)
        if c >= o:
            x1 = lo
            x2 = h
        else:
            x1 = h
            x2 = lo
        _leg_nb(o, x1, False, active, bar, params, state, levels, holding, fill_bar,
                fill_side, fill_price, fill_size, fill_fee, fill_level)
        _leg_nb(x1, x2, False, active, bar, params, state, levels, holding, fill_bar,
                fill_side, fill_price, fill_size, fill_fee, fill_level)
        _leg_nb(x2, c, False, active, bar, params, state, levels, holding, fill_bar,
                fill_side, fill_price, fill_size, fill_fee, fill_level)
        if state[S_N_FILLS] != fills_before:
            state[S_INVENTORY] = inventory_nb(holding, n)
    if mode == MODE_VOLATILITY:
        tr = h - lo
        if not first:
            tr = max(tr, abs(h - prev), abs(lo - prev))
        tr_buf[int(state[S_N_BARS]) % tr_buf.shape[0]] = tr
    state[S_PREV_CLOSE] = c
    state[S_N_BARS] += 1.0


@njit(cache=True, parallel=True)
def grid_run_nb(open_, high, low, close, active, params, init_cash, max_levels, tr_cap,
                record_series, fill_cap):
    """Run every parameter row of ``params`` over the bars in one call (prange over combos).

    Returns ``(cash, inventory, equity, fill_bar, fill_side, fill_price, fill_size, fill_fee,
    fill_level, n_fills, final_cash, final_inventory, final_equity, fees, max_drawdown)``. Series
    have shape ``(n_bars, n_combos)`` when ``record_series`` else ``(0, n_combos)``; fill logs
    ``(n_combos, fill_cap)`` with ``n_fills`` the true counts (larger than ``fill_cap`` means the
    log overflowed and must be re-run with more room).
    """
    n_bars = close.shape[0]
    n_combos = params.shape[0]
    rows = n_bars if record_series else 0
    cash_out = np.empty((rows, n_combos))
    inv_out = np.empty((rows, n_combos))
    eq_out = np.empty((rows, n_combos))
    fill_bar = np.zeros((n_combos, fill_cap), dtype=np.int64)
    fill_side = np.zeros((n_combos, fill_cap), dtype=np.int8)
    fill_price = np.zeros((n_combos, fill_cap))
    fill_size = np.zeros((n_combos, fill_cap))
    fill_fee = np.zeros((n_combos, fill_cap))
    fill_level = np.zeros((n_combos, fill_cap), dtype=np.int64)
    n_fills = np.zeros(n_combos, dtype=np.int64)
    final_cash = np.empty(n_combos)
    final_inv = np.empty(n_combos)
    final_eq = np.empty(n_combos)
    fees = np.empty(n_combos)
    max_dd = np.empty(n_combos)
    for k in prange(n_combos):
        state = np.empty(N_STATE)
        levels = np.empty(max_levels)
        holding = np.empty(max_levels)
        tr_buf = np.empty(max(tr_cap, 1))
        p = params[k]
        grid_init_nb(p, state, levels, holding, tr_buf, init_cash)
        n = int(p[P_N_LEVELS])
        # row views taken once: per-bar slicing would cost reference counting on every call
        fb, fs, fp = fill_bar[k], fill_side[k], fill_price[k]
        fz, ff, fl = fill_size[k], fill_fee[k], fill_level[k]
        peak = init_cash
        worst = 0.0
        for t in range(n_bars):
            grid_step_nb(open_[t], high[t], low[t], close[t], active[t], t, p, state, levels,
                         holding, tr_buf, fb, fs, fp, fz, ff, fl)
            inv = state[S_INVENTORY]
            eq = state[S_CASH] + inv * close[t]
            if eq > peak:
                peak = eq
            dd = eq / peak - 1.0
            if dd < worst:
                worst = dd
            if record_series:
                cash_out[t, k] = state[S_CASH]
                inv_out[t, k] = inv
                eq_out[t, k] = eq
        inv = inventory_nb(holding, n)
        n_fills[k] = int(state[S_N_FILLS])
        final_cash[k] = state[S_CASH]
        final_inv[k] = inv
        final_eq[k] = state[S_CASH] + inv * close[n_bars - 1] if n_bars > 0 else init_cash
        fees[k] = state[S_FEES]
        max_dd[k] = worst
    return (cash_out, inv_out, eq_out, fill_bar, fill_side, fill_price, fill_size, fill_fee,
            fill_level, n_fills, final_cash, final_inv, final_eq, fees, max_dd)
