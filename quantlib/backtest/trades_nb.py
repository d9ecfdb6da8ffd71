"""Numba kernel pairing grid fills into round-trip trades (numpy/numba only).

A buy at level ``i`` is closed by the next sell of level ``i``; a stop-out (level ``-1``) closes
every open buy pro rata (its fee shared by size), oldest buy first. Same rule and arithmetic as
the event-by-event definition, without a Python loop over fills.
"""

from __future__ import annotations

import numpy as np

from quantlib.jit import njit


@njit(cache=True)
def grid_round_trips_nb(fill_bar, fill_side, fill_price, fill_size, fill_fee, fill_level,
                        n_fills, max_levels):
    """Round trips of every combination's fill log (rows = combinations, see ``grid_run_nb``).

    Returns ``(combo, level, entry_bar, exit_bar, entry_price, exit_price, size, pnl)`` arrays,
    ordered by combination, then by exit fill, then (stop-outs) by entry order.
    """
    n_combos = n_fills.shape[0]
    total = 0
    for k in range(n_combos):
        total += n_fills[k]
    cap = total  # every trade consumes one buy fill (a stop-out closes many buys at once)
    combo = np.empty(cap, dtype=np.int64)
    level = np.empty(cap, dtype=np.int64)
    entry_bar = np.empty(cap, dtype=np.int64)
    exit_bar = np.empty(cap, dtype=np.int64)
    entry_price = np.empty(cap)
    exit_price = np.empty(cap)
    size = np.empty(cap)
    pnl = np.empty(cap)
    open_fill = np.empty(max(max_levels, 1), dtype=np.int64)  # fill index of the open buy, -1
    m = 0
    for k in range(n_combos):
        open_fill[:] = -1
        for j in range(n_fills[k]):
            lvl = fill_level[k, j]
            if fill_side[k, j] == 1:
                open_fill[lvl] = j
                continue
            if lvl >= 0:
                first, last = lvl, lvl + 1
            else:
                first, last = 0, max_levels
            # oldest open buy first: buys are logged in time order, so by fill index
            while True:
                pick = -1
                for i in range(first, last):
                    b = open_fill[i]
                    if b >= 0 and (pick < 0 or b < open_fill[pick]):
                        pick = i
                if pick < 0:
                    break
                b = open_fill[pick]
                open_fill[pick] = -1
                exit_fee = fill_fee[k, j] * fill_size[k, b] / fill_size[k, j]
                combo[m] = k
                level[m] = fill_level[k, b]
                entry_bar[m] = fill_bar[k, b]
                exit_bar[m] = fill_bar[k, j]
                entry_price[m] = fill_price[k, b]
                exit_price[m] = fill_price[k, j]
                size[m] = fill_size[k, b]
                pnl[m] = (fill_size[k, b] * (fill_price[k, j] - fill_price[k, b])
                          - fill_fee[k, b] - exit_fee)
                m += 1
    return (combo[:m], level[:m], entry_bar[:m], exit_bar[:m], entry_price[:m], exit_price[:m],
            size[:m], pnl[:m])
