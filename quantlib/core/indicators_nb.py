"""The one home of the indicator maths: finite-window kernels (numpy/numba only).

Every output value at bar ``t`` is computed from scratch from the window ending at ``t`` with a
fixed summation order, never from a running sum or a recursion started at bar 0. That makes the
value bit-identical whatever history precedes the window, which is what lets the live runner
evaluate a bounded window and reproduce the backtest exactly (see ``check_recursive``).
Bars without a full window are NaN.

Users: the signal kinds (:mod:`quantlib.core.kinds`), the ML feature matrix
(:mod:`quantlib.core.ml_features_nb`), the regime features, the fused sweep's exact path and its
running-sum rows (:mod:`quantlib.backtest.sweep_rows_nb` starts its recursions from
:func:`fir_at_nb`), the grid engine's and the exchange grid's true range
(:func:`true_range_bar_nb`, :func:`mean_true_range_nb`).

``start`` (where a kernel takes it): rows before ``start`` are left NaN because nobody reads
them (the live runner needs the last rows of its window only); rows from ``start`` on are the
same bits as with ``start = 0``.
"""

from __future__ import annotations

import numpy as np

from quantlib.jit import njit


@njit(cache=True, inline="always")
def window_sum_nb(x, first, stop):
    """``x[first] + ... + x[stop - 1]`` summed oldest first (the order every mean here uses)."""
    acc = 0.0
    for k in range(first, stop):
        acc += x[k]
    return acc


@njit(cache=True)
def _rolling_moment_nb(x, window, start, std):
    # the window's mean, or (std) its population standard deviation around that mean: the
    # deviation reuses the mean's bits, so SMA and Bollinger bands agree on the centre
    n = x.shape[0]
    out = np.full(n, np.nan)
    for t in range(max(window - 1, start), n):
        mean = window_sum_nb(x, t - window + 1, t + 1) / window
        if not std:
            out[t] = mean
            continue
        sq = 0.0
        for k in range(t - window + 1, t + 1):
            sq += (x[k] - mean) ** 2
        out[t] = np.sqrt(sq / window)
    return out


@njit(cache=True, aot="f8[:](f8[:], i8, i8)")
def rolling_mean_nb(x, window, start=0):
    return _rolling_moment_nb(x, window, start, False)


@njit(cache=True, aot="f8[:](f8[:], i8, i8)")
def rolling_std_nb(x, window, start=0):
    """Population standard deviation (ddof=0) over the window, two-pass per window."""
    return _rolling_moment_nb(x, window, start, True)


@njit(cache=True)
def _rolling_extreme_nb(x, window, sign):
    # the largest of ``sign * x`` over the window, returned unsigned: one loop for max (sign 1)
    # and min (sign -1); negating is exact, so the element picked is the one a direct min picks
    n = x.shape[0]
    out = np.full(n, np.nan)
    for t in range(window - 1, n):
        best = sign * x[t - window + 1]
        for k in range(t - window + 2, t + 1):
            if sign * x[k] > best:
                best = sign * x[k]
        out[t] = sign * best
    return out


@njit(cache=True, aot="f8[:](f8[:], i8)")
def rolling_max_nb(x, window):
    return _rolling_extreme_nb(x, window, 1.0)


@njit(cache=True, aot="f8[:](f8[:], i8)")
def rolling_min_nb(x, window):
    return _rolling_extreme_nb(x, window, -1.0)


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


@njit(cache=True, inline="always")
def fir_at_nb(x, weights, t):
    """``sum_k weights[k] * x[t - k]``, newest first: the truncated EMA's value at ``t``."""
    acc = 0.0
    for k in range(weights.shape[0]):
        acc += weights[k] * x[t - k]
    return acc


@njit(cache=True, aot="f8[:](f8[:], f8, i8, i8)")
def fir_ema_nb(x, alpha, length, start=0):
    """Exponential moving average truncated to the last ``length`` bars (finite memory).

    NaN inputs inside a window make that output NaN (so a NaN-led series, e.g. a MACD line,
    only yields values once a full window of defined inputs exists).
    """
    n = x.shape[0]
    out = np.full(n, np.nan)
    weights = fir_weights_nb(alpha, length)
    for t in range(max(length - 1, start), n):
        out[t] = fir_at_nb(x, weights, t)
    return out


@njit(cache=True, aot="f8[:](f8[:], f8, i8, i8)")
def fir_rsi_nb(close, alpha, length, start=0):
    """Wilder RSI with the gain/loss averages truncated to the last ``length`` price changes.

    Needs ``length + 1`` closes; a window without any move is RSI 50.
    """
    n = close.shape[0]
    out = np.full(n, np.nan)
    weights = fir_weights_nb(alpha, length)
    for t in range(max(length, start), n):
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


@njit(cache=True, inline="always")
def true_range_bar_nb(high, low, prev_close):
    """Wilder's true range of one bar: ``high - low`` widened to the previous close; with no
    previous close (NaN: the first bar of a series) just ``high - low``."""
    if np.isnan(prev_close):
        return high - low
    return max(high - low, abs(high - prev_close), abs(low - prev_close))


@njit(cache=True)
def true_range_nb(high, low, close, start=0):
    """True range per bar; NaN at bar 0, whose previous close is unknown (an average over a
    window then starts at bar 1, as Wilder's ATR does)."""
    n = close.shape[0]
    out = np.full(n, np.nan)
    for t in range(max(1, start), n):
        out[t] = true_range_bar_nb(high[t], low[t], close[t - 1])
    return out


@njit(cache=True, aot="f8(f8[:], f8[:], f8[:], i8)")
def mean_true_range_nb(high, low, close, period):
    """Mean true range of the last ``period`` bars, summed oldest first: the grid engine's ATR
    after the last bar (the first bar of the arrays, having no previous close, counts
    ``high - low``). NaN when there are fewer than ``period`` bars."""
    n = close.shape[0]
    if period < 1 or n < period:
        return np.nan
    total = 0.0
    for t in range(n - period, n):
        total += true_range_bar_nb(high[t], low[t], close[t - 1] if t > 0 else np.nan)
    return total / period


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
