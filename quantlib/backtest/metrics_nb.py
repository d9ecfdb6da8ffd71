"""Numba kernel of the path metrics (numpy/numba only; the pandas wrapper is ``metrics.py``).

One pass per equity column instead of a dozen full-matrix numpy temporaries: on a sweep of
hundreds of combinations the metrics would otherwise cost as much as the simulation itself.
"""

from __future__ import annotations

import numpy as np

from quantlib.jit import njit, prange

# columns of the kernel's output
K_MEAN = 0  # mean bar return
K_STD = 1  # sample std (ddof=1) of bar returns
K_DOWNSIDE = 2  # sqrt(mean(min(r, 0)^2))
K_MAX_DD = 3  # min of path / running peak - 1
K_DD_BARS = 4  # longest distance (bars) from the last bar at the running peak
K_MEAN_VALUE = 5  # mean of the equity values (not including the starting cash)
N_STATS = 6


@njit(cache=True, error_model="numpy")
def _column_stats_nb(path, col, rets, use_rets, out):
    n = path.shape[0]
    n_rets = rets.shape[0] if use_rets else n - 1
    total = 0.0
    downside = 0.0
    for i in range(n_rets):
        r = rets[i, col] if use_rets else path[i + 1, col] / path[i, col] - 1.0
        total += r
        d = r if r < 0.0 else 0.0
        downside += d * d
    mean = total / n_rets if n_rets > 0 else np.nan
    squares = 0.0
    for i in range(n_rets):
        r = rets[i, col] if use_rets else path[i + 1, col] / path[i, col] - 1.0
        squares += (r - mean) * (r - mean)
    out[K_MEAN] = mean
    out[K_STD] = np.sqrt(squares / (n_rets - 1)) if n_rets > 1 else np.nan
    out[K_DOWNSIDE] = np.sqrt(downside / n_rets) if n_rets > 0 else np.nan

    peak = path[0, col]
    last_peak = 0
    max_dd = 0.0
    dd_bars = 0
    invalid = False
    for i in range(n):
        value = path[i, col]
        if value >= peak:
            peak = value
            last_peak = i
        dd = value / peak - 1.0
        if dd != dd:  # NaN (a zero peak): numpy's min would propagate it
            invalid = True
        elif dd < max_dd:
            max_dd = dd
        if i - last_peak > dd_bars:
            dd_bars = i - last_peak
    out[K_MAX_DD] = np.nan if invalid else max_dd
    out[K_DD_BARS] = dd_bars


@njit(cache=True, parallel=True, error_model="numpy")
def path_stats_nb(path, rets, use_rets, first_value_row):
    """Per column of ``path`` (bars x columns): the statistics indexed by ``K_*``.

    ``path`` is the equity path the returns are taken on (starting cash prepended when there
    is one); ``first_value_row`` is the row of the first real equity value (1 with starting
    cash, else 0), for the mean value. With ``use_rets`` the bar returns come from ``rets``
    instead of ``path``.
    """
    n, n_cols = path.shape
    out = np.empty((n_cols, N_STATS))
    for col in prange(n_cols):
        _column_stats_nb(path, col, rets, use_rets, out[col])
        total = 0.0
        for i in range(first_value_row, n):
            total += path[i, col]
        out[col, K_MEAN_VALUE] = total / (n - first_value_row)
    return out
