"""Numba kernel turning order records into positions and equity (numpy/numba only).

``Portfolio.value()`` on grouped, shared-cash vectorbt portfolios is slow on wide sweeps; the
same sums from the order records take one pass here.
"""

from __future__ import annotations

import numpy as np

from quantlib.jit import njit


@njit(cache=True)
def positions_and_flows_nb(idx, col, signed_size, cash_flow, n_bars, n_cols):
    """Cumulative position per (bar, column) and the cash flow of each bar (not cumulated).

    Each order adds ``signed_size`` to its column's position from its bar on and
    ``cash_flow`` (``-signed_size * price - fee``) to its bar's flow.
    """
    position = np.zeros((n_bars, n_cols))
    flow = np.zeros((n_bars, n_cols))
    for k in range(idx.shape[0]):
        position[idx[k], col[k]] += signed_size[k]
        flow[idx[k], col[k]] += cash_flow[k]
    for i in range(1, n_bars):  # row by row: contiguous memory
        for j in range(n_cols):
            position[i, j] += position[i - 1, j]
    return position, flow


@njit(cache=True)
def single_asset_equity_nb(position, flow, close, init_cash):
    """Equity ``init_cash + cumulative flow + position * close`` per (bar, column); ``close``
    has one column per column or a single column shared by all.

    The cumulative flow is summed in bar order from 0, exactly as ``np.cumsum`` (and the live
    runner's cash account) does, so equity is bit-identical to those.
    """
    n_bars, n_cols = position.shape
    flex = close.shape[1] == 1  # one price column shared by every combination
    equity = np.empty((n_bars, n_cols))
    running = np.zeros(n_cols)
    for i in range(n_bars):
        for j in range(n_cols):
            running[j] += flow[i, j]
            price = close[i, 0] if flex else close[i, j]
            equity[i, j] = init_cash + running[j] + position[i, j] * price
    return equity
