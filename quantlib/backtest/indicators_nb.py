"""Finite-window indicator kernels (numpy/numba only).

Every output value at bar ``t`` is computed from scratch from the window ``x[t-w+1 .. t]`` with a
fixed summation order, never from a running sum or a recursion started at bar 0. That makes the
value bit-identical whatever history precedes the window, which is what lets the live runner
evaluate a bounded window and reproduce the backtest exactly (see ``check_recursive``).
Bars without a full window are NaN.
"""

from __future__ import annotations

import numpy as np

from quantlib.jit import njit


@njit(cache=True, aot="f8[:](f8[:], i8)")
def rolling_mean_nb(x, window):
    n = x.shape[0]
    out = np.full(n, np.nan)
    for t in range(window - 1, n):
        acc = 0.0
        for k in range(t - window + 1, t + 1):
            acc += x[k]
        out[t] = acc / window
    return out


@njit(cache=True, aot="f8[:](f8[:], i8)")
def rolling_std_nb(x, window):
    """Population standard deviation (ddof=0) over the window, two-pass per window."""
    n = x.shape[0]
    out = np.full(n, np.nan)
    for t in range(window - 1, n):
        acc = 0.0
        for k in range(t - window + 1, t + 1):
            acc += x[k]
        mean = acc / window
        sq = 0.0
        for k in range(t - window + 1, t + 1):
            sq += (x[k] - mean) ** 2
        out[t] = np.sqrt(sq / window)
    return out


@njit(cache=True, aot="f8[:](f8[:], i8)")
def rolling_max_nb(x, window):
    n = x.shape[0]
    out = np.full(n, np.nan)
    for t in range(window - 1, n):
        best = x[t - window + 1]
        for k in range(t - window + 2, t + 1):
            if x[k] > best:
                best = x[k]
        out[t] = best
    return out


@njit(cache=True, aot="f8[:](f8[:], i8)")
def rolling_min_nb(x, window):
    n = x.shape[0]
    out = np.full(n, np.nan)
    for t in range(window - 1, n):
        best = x[t - window + 1]
        for k in range(t - window + 2, t + 1):
            if x[k] < best:
                best = x[k]
        out[t] = best
    return out


@njit(cache=True)
def fir_weights_nb(alpha, length):
    """Exponential weights ``alpha * (1 - alpha)**k`` for lags k = 0..length-1, summing to 1."""
    weights = np.empty(length)
    total = 0.0
    for k in range(length):
        weights[k] = alpha * (1.0 - alpha) ** k
        total += weights[k]
    for k in range(length):
        weights[k] /= total
    return weights


@njit(cache=True, aot="f8[:](f8[:], f8, i8)")
def fir_ema_nb(x, alpha, length):
    """Exponential moving average truncated to the last ``length`` bars (finite memory).

    NaN inputs inside a window make that output NaN (so a NaN-led series, e.g. a MACD line,
    only yields values once a full window of defined inputs exists).
    """
    n = x.shape[0]
    out = np.full(n, np.nan)
    weights = fir_weights_nb(alpha, length)
    for t in range(length - 1, n):
        acc = 0.0
        for k in range(length):
            acc += weights[k] * x[t - k]
        out[t] = acc
    return out


@njit(cache=True, aot="f8[:](f8[:], f8, i8)")
def fir_rsi_nb(close, alpha, length):
    """Wilder RSI with the gain/loss averages truncated to the last ``length`` price changes.

    Needs ``length + 1`` closes; a window without any move is RSI 50.
    """
    n = close.shape[0]
    out = np.full(n, np.nan)
    weights = fir_weights_nb(alpha, length)
    for t in range(length, n):
        gain = 0.0
        loss = 0.0
        for k in range(length):
            change = close[t - k] - close[t - k - 1]
            if change > 0:
                gain += weights[k] * change
            else:
                loss -= weights[k] * change
        total = gain + loss
        out[t] = 50.0 if total == 0.0 else 100.0 * gain / total
    return out


@njit(cache=True, aot="f8[:](f8[:], i8)")
def hold_nb(event, limit):
    """Each defined value of ``event`` held over at most ``limit`` following NaN bars, 0 where
    nothing is held: pandas' ``ffill(limit=limit).fillna(0)``, so the value at bar ``t``
    depends on ``event[t-limit .. t]`` only (finite memory)."""
    n = event.shape[0]
    out = np.zeros(n)
    held = np.nan
    age = 0
    for t in range(n):
        if not np.isnan(event[t]):
            held = event[t]
            age = 0
            out[t] = held
        else:
            age += 1
            if age <= limit and not np.isnan(held):
                out[t] = held
    return out
