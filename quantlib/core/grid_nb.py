"""Numba kernel of the grid-trading engine (numpy/numba only; the pandas backtests are
:mod:`quantlib.backtest.grid`).

The simulation rule (the spec the plain-Python reference in the tests is written from):

Levels
    ``n`` levels ``L_0 < ... < L_{n-1}`` between ``lower`` and ``upper``:
    arithmetic ``L_j = lower + j * (upper - lower) / (n - 1)``;
    geometric ``L_j = lower * (upper / lower) ** (j / (n - 1))``;
    fibonacci ``L_j = lower + r_j * (upper - lower)`` with ratios ``r`` the first ``n`` entries of
    ``FIB_RATIOS_PRIORITY`` (0, 1, .5, .382, .618, .236, .786 - the 7 classic retracement ratios -
    then phi**-k and 1 - phi**-k for k = 4, 5, ... which crowd the edges), sorted ascending;
    volatility ``L_j = centre + (j - (n - 1) / 2) * k * ATR`` (see *Volatility grid*).
    Up to ``MAX_LEVELS`` levels (``MAX_FIB_LEVELS`` for fibonacci, whose ratios run out).
Orders
    Each level ``i < n - 1`` holding nothing carries a buy limit while the price is above it;
    a filled buy of ``order_value / L_i`` base units at level ``i`` places a sell of that
    quantity at ``L_{i+1}``; when that sell fills, level ``i`` is empty again and its buy rests
    again (price is then above it). The top level never buys. No initial inventory. *When*
    orders are placed and how they fill is the fill model (``params[P_FILL_MODEL]``):
Fill model "bar" (``FILL_BAR``, the default: a bot whose orders change only at bar closes)
    The book decided at the close of bar ``t`` is what rests, unchanged, during bar ``t+1``:
    a sell of every held level ``i`` (all its units) at ``L_{i+1}``, and a buy at every empty
    level ``i < n - 1`` with ``0 < L_i < close_t`` when ``active[t+1]``, nearest level first for
    as long as the cash at close ``t`` pays for them (each costs ``value + fee`` at its fill
    price, see *Costs*; the first buy that does not fit and every level below it wait for a
    later close). During bar ``t+1`` a resting buy fills when the bar's range reaches it
    (``low <= L_i``), a resting sell when ``high >= L_{i+1}``, each **at its limit price**, also
    when the bar opens beyond it: that is what an exchange does with a resting limit order (in
    a market that trades around the clock, bar ``t+1``'s open is a trade after bar ``t``'s close,
    and the price got there through the resting order, which is matched at its own price). An
    order the price had already passed when it was placed (e.g. the sell of a level bought in a
    bar that closed above ``L_{i+1}``) would fill at once at a better price at a real venue;
    the rule keeps its limit price: conservative. A level fills at most once per bar: the
    follow-up order (the sell of a level just bought, the buy of a level just sold) is decided
    at close ``t+1`` and rests from bar ``t+2``. Every fill is at a limit price and every buy's
    cash is set aside at the close, so the order of fills within a bar changes nothing but the
    log, which lists them by level, lowest first. Bar 0 has no book: the first one is decided
    at its close. At each close, after the bar's fills: a volatility grid is (re)built (see
    *Volatility grid*), then the stop-out is checked on the close (see *Stop-out*).
Fill model "touch" (``FILL_TOUCH``, an explicit optimistic option: a bot reacting tick by tick)
    Orders change the instant a level fills. Bar ``t`` is walked as
    ``prev_close -> open -> low -> high -> close`` when ``close >= open`` and
    ``prev_close -> open -> high -> low -> close`` otherwise (bar 0 starts at its open). The
    first leg is the *gap*: every order it crosses fills at the open. On the other legs a level
    is filled when touched: a buy at ``L`` fills on a falling leg ``a -> b`` with
    ``b <= L < a``, a sell at ``L`` on a rising leg with ``a < L <= b``, at the level price, in
    the order the leg meets them. Buys and sells filled on one leg can fill their follow-up
    order on a later leg of the same bar. A buy is checked against the cash when it fills.
Costs
    Buy execution price ``p * (1 + slippage)``, sell ``p * (1 - slippage)`` (slippage applied to
    limit fills too: conservative); fee ``fee_rate * qty * exec_price``. A buy whose
    ``value + fee`` exceeds the cash ("bar": left at the close; "touch": when it fills) is not
    filled (no leverage); it stays armed.
Stop-out (optional, ``stop_margin >= 0``)
    Thresholds ``S_low = L_0 * (1 - margin)``, ``S_high = L_{n-1} * (1 + margin)``. "bar": when
    a close lies beyond a threshold, all inventory is sold at that close (a market order sent as
    the bar closes) and the grid stops for good. "touch": when a leg reaches a threshold (after
    the level fills the leg meets first) or a bar opens beyond one, all inventory is sold at the
    threshold (the open for the gap leg) and the grid stops for good.
Active mask
    ``active[t]`` must be known before bar ``t`` opens (shift a close-based regime signal by one
    bar). On an inactive bar no buy rests (none fills, a "touch" gap included); resting sells
    stay and may fill, inventory is kept, the stop-out still applies; buys re-arm below the
    price for the next active bar.
Volatility grid
    ``TR_0 = high - low``; ``TR_j`` also spans ``close_{j-1}`` (the one true range of every
    indicator, :func:`quantlib.core.indicators_nb.true_range_bar_nb`). A grid holding no
    inventory is (re)built when no grid exists yet or the price lies outside ``[L_0, L_{n-1}]``,
    with spacing ``k * ATR``, but only if ``k * ATR >= MIN_STEP_REL * centre`` (see *Degenerate
    grids*); otherwise nothing changes: the grid there stays, and with none the bot stays flat. A
    grid holding inventory is never moved (its sells must stay valid). "bar": at the close of bar
    ``t`` (from bar ``p - 1`` on), centred on ``close_t``, ``ATR`` = mean true range of bars
    ``t-p+1 .. t``. "touch": at the open of bar ``t`` after the gap leg (from bar ``p`` on),
    centred on ``open_t``, ``ATR`` = mean true range of bars ``t-p .. t-1``. Either way the ATR
    never sees a bar after the decision. Levels <= 0 never fill.
Degenerate grids
    Neighbouring levels must lie at least ``MIN_STEP_REL`` (1e-10) x the price apart: a step of
    a few units in the last place of a float (a near-flat ATR history, bounds a hair apart) gives
    levels that round to the same price or out of order, i.e. no grid at all. A volatility grid
    narrower than ``MIN_STEP_REL * centre`` is not built (above). A fixed grid's levels are
    known from its parameters, so the grid kind refuses one whose smallest step is below
    ``MIN_STEP_REL * upper`` (:mod:`quantlib.core.grid_kind`). 1e-10 is far finer than the price
    ticks of the venues we trade (BTC/USDT's 0.01 is ~1e-7 of its price) and lets through every
    fixed grid with relative bounds in the declared parameter ranges (the tightest, a 64-level
    fibonacci grid over +-0.1 %, steps 2.5e-10).
Outputs
    Per bar: cash, inventory (base units), equity ``cash + inventory * close``; a fill log.

State layout (so the live runner steps the very same code one closed bar at a time):
``params`` row indexed by ``P_*``, scalar ``state`` indexed by ``S_*``, per-level ``levels`` and
``holding`` arrays and a true-range ring buffer ``tr_buf``.
"""

from __future__ import annotations

import numpy as np

from quantlib.core.indicators_nb import true_range_bar_nb
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
P_FILL_MODEL = 10  # FILL_BAR or FILL_TOUCH
N_PARAMS = 11

# fill models (see the module doc)
FILL_BAR = 0
FILL_TOUCH = 1

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
S_MIN_SELL = 9  # lowest resting sell price (NaN: none), recomputed with S_INVENTORY
N_STATE = 10

MAX_LEVELS = 1000  # arithmetic, geometric and volatility grids
# smallest step between neighbouring levels, relative to the price (see *Degenerate grids*)
MIN_STEP_REL = 1e-10

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
    state[S_MIN_SELL] = np.nan
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
def _first_at_or_above_nb(levels, n, x):
    # index of the first level >= x, n if none (binary search; levels are sorted)
    left = 0
    right = n
    while left < right:
        mid = (left + right) // 2
        if levels[mid] < x:
            left = mid + 1
        else:
            right = mid
    return left


@njit(cache=True, inline="always")
def _quiet_bar_nb(lo, hi, state, levels, margin):
    # "touch": True when no level and no stop threshold lies in [lo, hi]: nothing can happen.
    n = int(state[S_N_ACTIVE_LEVELS])
    if margin >= 0.0:
        if levels[0] * (1.0 - margin) >= lo or levels[n - 1] * (1.0 + margin) <= hi:
            return False
    left = _first_at_or_above_nb(levels, n, lo)
    return left == n or levels[left] > hi


@njit(cache=True)
def inventory_nb(holding, n):
    """Base units held across levels."""
    total = 0.0
    for i in range(n):
        total += holding[i]
    return total


@njit(cache=True)
def _refresh_nb(state, levels, holding, n):
    # S_INVENTORY (summed in inventory_nb's order) and S_MIN_SELL (the lowest held level's sell)
    total = 0.0
    lowest_sell = np.nan
    for i in range(n):
        total += holding[i]
        if holding[i] > 0.0 and np.isnan(lowest_sell) and i + 1 < n:
            lowest_sell = levels[i + 1]
    state[S_INVENTORY] = total
    state[S_MIN_SELL] = lowest_sell


@njit(cache=True, inline="always")
def _touch_step_nb(o, h, lo, c, active, bar, params, state, levels, holding, tr_buf, fill_bar,
                   fill_side, fill_price, fill_size, fill_fee, fill_level):
    # the "touch" fill model of the module doc
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
                    _build_vol_nb(o, params, state, levels, tr_buf)
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
            _refresh_nb(state, levels, holding, n)
    _close_bar_nb(h, lo, c, prev, mode, state, tr_buf)


@njit(cache=True)
def _build_vol_nb(centre, params, state, levels, tr_buf):
    # a volatility grid around ``centre``, spacing atr_k x the mean of the last atr_period true
    # ranges (ring buffer slots summed in chronological order); never a degenerate grid whose
    # levels would not be distinct prices (False for a NaN spacing too)
    period = int(params[P_ATR_PERIOD])
    nb = int(state[S_N_BARS])
    total = 0.0
    for q in range(nb - period, nb):
        total += tr_buf[q % tr_buf.shape[0]]
    spacing = params[P_ATR_K] * (total / period)
    if spacing >= MIN_STEP_REL * centre:
        vol_levels_nb(centre, spacing, int(state[S_N_ACTIVE_LEVELS]), levels)
        state[S_HAS_GRID] = 1.0


@njit(cache=True, inline="always")
def _close_bar_nb(h, lo, c, prev, mode, state, tr_buf):
    # the end of every bar, whichever fill model: a volatility grid records the bar's true
    # range, the close is what the next bar's book is built on, and the bar is counted
    if mode == MODE_VOLATILITY:
        tr_buf[int(state[S_N_BARS]) % tr_buf.shape[0]] = true_range_bar_nb(h, lo, prev)
    state[S_PREV_CLOSE] = c
    state[S_N_BARS] += 1.0


@njit(cache=True)
def _bar_fills_nb(h, lo, active, bar, params, state, levels, holding, fill_bar, fill_side,
                  fill_price, fill_size, fill_fee, fill_level):
    """"bar" model: fill the book decided at the previous close against the range [lo, h]."""
    n = int(state[S_N_ACTIVE_LEVELS])
    slip = params[P_SLIPPAGE]
    fee_rate = params[P_FEE]
    order_value = params[P_ORDER_VALUE]
    # Buys rest at the empty levels top_buy, top_buy - 1, ... down to lowest_buy: below the
    # close, nearest first, while the cash at the close pays for them. Levels under the bar's
    # low cannot fill, so the walk stops there (the budget runs from the top down).
    top_buy = min(_first_at_or_above_nb(levels, n, state[S_PREV_CLOSE]) - 1, n - 2)
    lowest_buy = top_buy + 1
    if active:
        left = state[S_CASH]
        i = top_buy
        while i >= 0 and levels[i] > 0.0 and levels[i] >= lo:
            if holding[i] == 0.0:
                value = (order_value / levels[i]) * (levels[i] * (1.0 + slip))
                fee = value * fee_rate
                if value + fee > left:
                    break
                left = left - value - fee
            lowest_buy = i
            i -= 1
    # each level once, lowest first: held ones sell at L_{i+1} when the high reaches it, empty
    # ones in the buy range buy at L_i when the low reaches it
    first_level = lowest_buy
    if not np.isnan(state[S_MIN_SELL]):  # the lowest held level
        first_level = min(first_level, _first_at_or_above_nb(levels, n, state[S_MIN_SELL]) - 1)
    last_level = max(top_buy, _first_at_or_above_nb(levels, n, h) - 1)
    for i in range(max(first_level, 0), min(last_level, n - 2) + 1):
        if holding[i] > 0.0:
            if levels[i + 1] <= h:
                qty = holding[i]
                px = levels[i + 1] * (1.0 - slip)
                value = qty * px
                fee = value * fee_rate
                state[S_CASH] = state[S_CASH] + value - fee
                holding[i] = 0.0
                _record_nb(state, bar, -1, px, qty, fee, i, fill_bar, fill_side, fill_price,
                           fill_size, fill_fee, fill_level)
        elif lowest_buy <= i <= top_buy and levels[i] >= lo:
            qty = order_value / levels[i]
            px = levels[i] * (1.0 + slip)
            value = qty * px
            fee = value * fee_rate
            state[S_CASH] = state[S_CASH] - value - fee
            holding[i] = qty
            _record_nb(state, bar, 1, px, qty, fee, i, fill_bar, fill_side, fill_price,
                       fill_size, fill_fee, fill_level)


@njit(cache=True, inline="always")
def _bar_step_nb(o, h, lo, c, active, bar, params, state, levels, holding, tr_buf, fill_bar,
                 fill_side, fill_price, fill_size, fill_fee, fill_level):
    # the "bar" fill model of the module doc
    prev = state[S_PREV_CLOSE]
    mode = int(params[P_MODE])
    fills_before = state[S_N_FILLS]
    if state[S_STOPPED] == 0.0 and state[S_HAS_GRID] != 0.0 and not np.isnan(prev):
        n = int(state[S_N_ACTIVE_LEVELS])
        # Fast path: a resting sell is at or under the high (False for NaN: no sell), or a level
        # (a possible resting buy) lies in [low, previous close); otherwise nothing can fill.
        busy = state[S_MIN_SELL] <= h
        if not busy and active:
            k = _first_at_or_above_nb(levels, n, lo)
            busy = k < n - 1 and levels[k] < prev
        if busy:
            _bar_fills_nb(h, lo, active, bar, params, state, levels, holding, fill_bar,
                          fill_side, fill_price, fill_size, fill_fee, fill_level)
            if state[S_N_FILLS] != fills_before:
                _refresh_nb(state, levels, holding, n)
    _close_bar_nb(h, lo, c, prev, mode, state, tr_buf)
    if state[S_STOPPED] != 0.0:
        return
    n = int(state[S_N_ACTIVE_LEVELS])
    if (mode == MODE_VOLATILITY and state[S_INVENTORY] == 0.0
            and state[S_N_BARS] >= params[P_ATR_PERIOD]
            and (state[S_HAS_GRID] == 0.0 or c < levels[0] or c > levels[n - 1])):
        _build_vol_nb(c, params, state, levels, tr_buf)
    margin = params[P_STOP_MARGIN]
    if margin >= 0.0 and state[S_HAS_GRID] != 0.0:
        if c < levels[0] * (1.0 - margin) or c > levels[n - 1] * (1.0 + margin):
            fills_before = state[S_N_FILLS]
            _flatten_nb(c, bar, params, state, holding, n, fill_bar, fill_side, fill_price,
                        fill_size, fill_fee, fill_level)
            if state[S_N_FILLS] != fills_before:
                _refresh_nb(state, levels, holding, n)


# inline="always": a real call per bar passes 11 arrays and touches shared reference counts
# (row views of the fill logs), which costs more than a quiet bar's whole work
@njit(cache=True, inline="always",
      aot="void(f8, f8, f8, f8, b1, i8, f8[:], f8[:], f8[:], f8[:], f8[:], "
          "i8[:], i1[:], f8[:], f8[:], f8[:], i8[:])")
def grid_step_nb(o, h, lo, c, active, bar, params, state, levels, holding, tr_buf, fill_bar,
                 fill_side, fill_price, fill_size, fill_fee, fill_level):
    """Advance one combination by one closed bar ``(o, h, lo, c)`` under its fill model
    (``params[P_FILL_MODEL]``); see the module doc.

    Mutates ``state``, ``levels``, ``holding``, ``tr_buf`` and appends to the fill log arrays
    (``state[S_N_FILLS]`` counts fills, including any beyond the arrays' capacity).
    """
    if params[P_FILL_MODEL] == FILL_TOUCH:
        _touch_step_nb(o, h, lo, c, active, bar, params, state, levels, holding, tr_buf,
                       fill_bar, fill_side, fill_price, fill_size, fill_fee, fill_level)
    else:
        _bar_step_nb(o, h, lo, c, active, bar, params, state, levels, holding, tr_buf,
                     fill_bar, fill_side, fill_price, fill_size, fill_fee, fill_level)


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
