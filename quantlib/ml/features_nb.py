"""Finite-window numba kernels behind :mod:`quantlib.ml.features` and :mod:`quantlib.ml.labels`.

Every kernel computes output ``t`` from an explicit loop over a bounded window ending at ``t``
(never a running sum or an infinite recursion), so the value at ``t`` is bit-identical whether
the input starts at bar 0 or only a window before ``t``. That is what lets the live runner
evaluate a bounded window and reproduce the backtest exactly. Outputs are NaN where the window
is not yet full. Imports numpy and numba only.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def log_return_nb(close, horizon):
    """``log(close[t] / close[t - horizon])``; NaN for the first ``horizon`` bars."""
    n = close.shape[0]
    out = np.full(n, np.nan)
    for t in range(horizon, n):
        out[t] = np.log(close[t] / close[t - horizon])
    return out


@njit(cache=True)
def window_mean_nb(x, window):
    """Mean of ``x[t-window+1 .. t]``; NaN until the window is full or if it holds a NaN."""
    n = x.shape[0]
    out = np.full(n, np.nan)
    for t in range(window - 1, n):
        acc = 0.0
        for k in range(window):
            acc += x[t - k]
        out[t] = acc / window
    return out


@njit(cache=True)
def window_std_nb(x, window):
    """Population standard deviation (ddof=0) of ``x[t-window+1 .. t]`` (two-pass, per window)."""
    n = x.shape[0]
    out = np.full(n, np.nan)
    for t in range(window - 1, n):
        acc = 0.0
        for k in range(window):
            acc += x[t - k]
        mean = acc / window
        ss = 0.0
        for k in range(window):
            d = x[t - k] - mean
            ss += d * d
        out[t] = np.sqrt(ss / window)
    return out


@njit(cache=True)
def window_ewm_nb(x, alpha, length):
    """Exponentially weighted mean truncated to the last ``length`` values.

    ``sum_k w_k x[t-k] / sum_k w_k`` with ``w_k = (1 - alpha)**k``, ``k = 0..length-1``: the
    finite-memory stand-in for the recursive EMA (whose weights beyond ``length`` are tiny).
    """
    n = x.shape[0]
    out = np.full(n, np.nan)
    weights = np.empty(length)
    total = 0.0
    for k in range(length):
        weights[k] = (1.0 - alpha) ** k
        total += weights[k]
    for t in range(length - 1, n):
        acc = 0.0
        for k in range(length):
            acc += weights[k] * x[t - k]
        out[t] = acc / total
    return out


@njit(cache=True)
def true_range_nb(high, low, close):
    """Wilder's true range; NaN at bar 0 (needs the previous close)."""
    n = close.shape[0]
    out = np.full(n, np.nan)
    for t in range(1, n):
        prev = close[t - 1]
        out[t] = max(high[t] - low[t], abs(high[t] - prev), abs(low[t] - prev))
    return out


@njit(cache=True)
def rsi_nb(close, window, length):
    """RSI with Wilder smoothing (alpha = 1/window) truncated to ``length`` price changes.

    ``100 * gain / (gain + loss)``; 50 when prices did not move at all in the window.
    """
    n = close.shape[0]
    gain = np.full(n, np.nan)
    loss = np.full(n, np.nan)
    for t in range(1, n):
        d = close[t] - close[t - 1]
        gain[t] = d if d > 0.0 else 0.0
        loss[t] = -d if d < 0.0 else 0.0
    avg_gain = window_ewm_nb(gain, 1.0 / window, length)
    avg_loss = window_ewm_nb(loss, 1.0 / window, length)
    out = np.full(n, np.nan)
    for t in range(n):
        g = avg_gain[t]
        lo = avg_loss[t]
        if np.isnan(g) or np.isnan(lo):
            continue
        out[t] = 50.0 if g + lo == 0.0 else 100.0 * g / (g + lo)
    return out


@njit(cache=True)
def hysteresis_window_nb(proba, entry, exit_, allow_short, memory):
    """Target positions from probabilities with entry/exit thresholds, over a bounded memory.

    The long/flat/short state machine (enter long at ``p >= entry``, leave at ``p < exit_``;
    mirror image ``1 - p`` for shorts) restarts flat ``memory`` bars back, so position ``t``
    depends on ``proba[t-memory+1 .. t]`` only. NaN probabilities count as "no opinion": flat.
    """
    n = proba.shape[0]
    out = np.zeros(n)
    for t in range(memory - 1, n):
        pos = 0.0
        for i in range(t - memory + 1, t + 1):
            p = proba[i]
            if np.isnan(p):
                pos = 0.0
                continue
            if pos > 0.0 and p < exit_:
                pos = 0.0
            elif pos < 0.0 and p > 1.0 - exit_:
                pos = 0.0
            if pos == 0.0:
                if p >= entry:
                    pos = 1.0
                elif allow_short and p <= 1.0 - entry:
                    pos = -1.0
        out[t] = pos
    return out


@njit(cache=True)
def triple_barrier_nb(close, high, low, tp, sl, horizon):
    """First barrier touched after entry at ``close[t]``: +1 take-profit, -1 stop-loss, 0 time.

    Scans bars ``t+1 .. t+horizon``; a bar touching both barriers counts as the stop (the
    conservative reading, since the intra-bar order is unknown). Returns labels, the end
    position of each label window and the return at exit; rows without ``horizon`` future bars
    get label -2 (no label) and end -1.
    """
    n = close.shape[0]
    label = np.full(n, -2, dtype=np.int64)
    end = np.full(n, -1, dtype=np.int64)
    ret = np.full(n, np.nan)
    for t in range(n - horizon):
        entry = close[t]
        upper = entry * (1.0 + tp)
        lower = entry * (1.0 - sl)
        label[t] = 0
        end[t] = t + horizon
        ret[t] = close[t + horizon] / entry - 1.0
        for i in range(t + 1, t + horizon + 1):
            if low[i] <= lower:
                label[t] = -1
                end[t] = i
                ret[t] = -sl
                break
            if high[i] >= upper:
                label[t] = 1
                end[t] = i
                ret[t] = tp
                break
    return label, end, ret
