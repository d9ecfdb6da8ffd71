"""Finite-window numba kernels behind :mod:`quantlib.core.ml_features` and :mod:`quantlib.ml.labels`.

Every kernel computes output ``t`` from an explicit loop over a bounded window ending at ``t``
(never a running sum or an infinite recursion), so the value at ``t`` is bit-identical whether
the input starts at bar 0 or only a window before ``t``. That is what lets the live runner
evaluate a bounded window and reproduce the backtest exactly. Outputs are NaN where the window
is not yet full. The indicators themselves (means, deviations, EMAs, RSI, true range) are the
kinds' own, from :mod:`quantlib.core.indicators_nb`.
"""

from __future__ import annotations

import numpy as np

from quantlib.core.indicators_nb import (
    fir_ema_nb,
    fir_rsi_nb,
    rolling_mean_nb,
    rolling_std_nb,
    true_range_nb,
)
from quantlib.jit import njit


@njit(cache=True, aot="f8[:](f8[:], i8, i8)")
def log_return_nb(close, horizon, start=0):
    """``log(close[t] / close[t - horizon])``; NaN for the first ``horizon`` bars.

    Every kernel here leaves rows before ``start`` NaN (their values are not needed: the live
    runner only uses the last rows of its window); rows from ``start`` on are unchanged.
    """
    n = close.shape[0]
    out = np.full(n, np.nan)
    for t in range(max(horizon, start), n):
        out[t] = np.log(close[t] / close[t - horizon])
    return out


@njit(cache=True,
      aot="f8[:, :](f8[:], f8[:], f8[:], f8[:], i8[:], "
          "i8, i8, i8, i8, i8, i8, i8, i8, i8, i8, i8)")
def technical_features_nb(high, low, close, volume, horizons, vol_window, rsi_window, rsi_length,
                          macd_fast, macd_slow, macd_signal, ema_memory, bb_window, atr_window,
                          volume_window, start):
    """The technical feature columns of :func:`quantlib.core.ml_features.feature_array`, in order:
    ``ret_h`` per horizon, volatility, RSI, MACD line / signal / histogram, Bollinger %b, ATR
    over close, volume z-score, for rows ``start ..`` (earlier rows NaN). One compiled call
    instead of ~20 (the live path is per bar)."""
    n = close.shape[0]
    n_h = horizons.shape[0]
    out = np.full((n, n_h + 8), np.nan)
    for j in range(n_h):
        out[:, j] = log_return_nb(close, horizons[j], start)
    ret1 = log_return_nb(close, 1, start - vol_window + 1)
    out[:, n_h] = rolling_std_nb(ret1, vol_window, start)
    out[:, n_h + 1] = fir_rsi_nb(close, 1.0 / rsi_window, rsi_length, start)
    # the signal line at t needs the MACD line over its own window before t
    macd_start = start - ema_memory * macd_signal + 1
    ema_fast = fir_ema_nb(close, 2.0 / (macd_fast + 1), ema_memory * macd_fast, macd_start)
    ema_slow = fir_ema_nb(close, 2.0 / (macd_slow + 1), ema_memory * macd_slow, macd_start)
    macd = (ema_fast - ema_slow) / close
    signal = fir_ema_nb(macd, 2.0 / (macd_signal + 1), ema_memory * macd_signal, start)
    ma = rolling_mean_nb(close, bb_window, start)
    sd = rolling_std_nb(close, bb_window, start)
    atr = rolling_mean_nb(true_range_nb(high, low, close, start - atr_window + 1), atr_window,
                          start)
    vmean = rolling_mean_nb(volume, volume_window, start)
    vsd = rolling_std_nb(volume, volume_window, start)
    for t in range(max(start, 0), n):
        out[t, n_h + 2] = macd[t]
        out[t, n_h + 3] = signal[t]
        out[t, n_h + 4] = macd[t] - signal[t]
        if np.isnan(sd[t]):
            out[t, n_h + 5] = np.nan
        elif sd[t] > 0:
            out[t, n_h + 5] = (close[t] - (ma[t] - 2.0 * sd[t])) / (4.0 * sd[t])
        else:
            out[t, n_h + 5] = 0.5
        out[t, n_h + 6] = atr[t] / close[t]
        if np.isnan(vsd[t]):
            out[t, n_h + 7] = np.nan
        elif vsd[t] > 0:
            out[t, n_h + 7] = (volume[t] - vmean[t]) / vsd[t]
        else:
            out[t, n_h + 7] = 0.0
    return out


@njit(cache=True, aot="f8[:](f8[:], f8, f8, b1, i8)")
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
