"""Indicator rows of a fused sweep in O(bars) per window, each with a proven error bound.

The kinds' indicators (:mod:`quantlib.core.indicators_nb`) recompute every window from
scratch (O(bars x window)), so that a bounded live window reproduces the backtest bit for bit.
A sweep needs the same *decisions*, not the same bits: these kernels compute each distinct
window once with running sums (SMA, rolling std: double-double sums; EMA and Wilder RSI: the
truncated exponential filter's recursion) and return, per row, a bound ``err`` such that
``|row[t] - kind_row[t]| <= err`` at every bar where the kind's row is defined (NaN exactly
where the kind's row is NaN). The sweep kernel compares two approximate values only when their
gap exceeds the sum of their bounds; inside the bound it recomputes the kind's own values at
that bar (``exact_*`` below: the kinds' kernels on the window's slice), so every target equals
the kind's bit for bit (ties included: a tie is always inside the bound).

The bounds, in units of ``u = 2**-53`` times ``M = max|x|`` (each doubled for safety):

- SMA of ``w``: the from-scratch sum is off the exact sum by at most ``(w - 1) u w M``; the
  double-double running sum is exact to ``~n u**2 w M``; two roundings, the division.
- EMA truncated to ``L`` bars, ``alpha = a``: the kind sums ``L`` float weights (each within
  ``~2 L u`` relative of the geometric ones, ``pow`` by squaring included) in order; the
  recursion ``R_t = (1 - a) R_{t-1} + c0 x_t - cL x_{t-L}`` adds at most ``50 u M`` per bar
  (rounding and coefficient error, with ``a L <= 9``), damped by ``1 - a``: ``50 u M / a``.
- Rolling std (population): the two-pass value is within ``|mean error| + (1.5 w + 5) u M``
  of the exact one; the running ``(S2 - S1**2 / w) / w`` variance is within ``8 u M**2``, so
  its root within ``sqrt(8 u) M``.
- Wilder RSI: gain and loss are truncated EMAs of the up and down moves; the RSI bound at a bar
  follows from theirs (``100 (e_g + e_l) / (total - e_g - e_l)``) and is infinite where the
  total move could be zero (the kind's RSI is then 50 by definition).
- Rolling max/min: exact (the van Herk / Gil-Werman block scan picks the same element).
"""

from __future__ import annotations

import math

import numpy as np

from quantlib.core.indicators_nb import (
    fir_at_nb,
    fir_ema_nb,
    fir_rsi_nb,
    fir_weights_nb,
    rolling_mean_nb,
    rolling_std_nb,
)
from quantlib.jit import njit, prange

U2 = 2.0**-52  # twice the unit roundoff: every bound below carries a factor-2 margin
TINY = 2.0**-100  # double-double drift per bar, relative to w * M


@njit(cache=True)
def _two_sum(a, b):
    """``a + b`` as an unevaluated pair (sum, rounding error), exactly (Knuth)."""
    s = a + b
    bb = s - a
    return s, (a - (s - bb)) + (b - bb)


@njit(cache=True)
def max_abs_nb(x):
    """Largest ``|x|``; inf when ``x`` holds a NaN or an infinity (bounds then force the exact
    path everywhere)."""
    m = 0.0
    for v in x:
        if not math.isfinite(v):
            return np.inf
        m = max(m, abs(v))
    return m


@njit(cache=True)
def _sma_row_nb(x, w, out):
    n = x.shape[0]
    hi, lo = 0.0, 0.0
    for t in range(n):
        hi, e = _two_sum(hi, x[t])
        lo += e
        if t >= w:
            hi, e = _two_sum(hi, -x[t - w])
            lo += e
        hi, lo = _two_sum(hi, lo)
        out[t] = (hi + lo) / w if t >= w - 1 else np.nan


@njit(cache=True)
def _std_row_nb(x, w, out):
    n = x.shape[0]
    hi1, lo1, hi2, lo2 = 0.0, 0.0, 0.0, 0.0
    for t in range(n):
        hi1, e = _two_sum(hi1, x[t])
        lo1 += e
        hi2, e = _two_sum(hi2, x[t] * x[t])
        lo2 += e
        if t >= w:
            old = x[t - w]
            hi1, e = _two_sum(hi1, -old)
            lo1 += e
            hi2, e = _two_sum(hi2, -(old * old))
            lo2 += e
        hi1, lo1 = _two_sum(hi1, lo1)
        hi2, lo2 = _two_sum(hi2, lo2)
        if t >= w - 1:
            s1, s2 = hi1 + lo1, hi2 + lo2
            out[t] = math.sqrt(max((s2 - s1 * s1 / w) / w, 0.0))
        else:
            out[t] = np.nan


@njit(cache=True)
def _fir_row_nb(x, first, alpha, weights, out):
    """The truncated EMA of ``x[first:]`` by recursion: ``out[t]`` for ``t >= first + L - 1``
    (NaN before); the first value is the kinds' ordered sum."""
    n, length = x.shape[0], weights.shape[0]
    q = 1.0 - alpha  # the ratio fir_weights_nb raises to the power k
    c0, c_last = weights[0], weights[length - 1] * q
    out[:] = np.nan
    start = first + length - 1
    if start >= n:
        return
    acc = fir_at_nb(x, weights, start)
    out[start] = acc
    for t in range(start + 1, n):
        acc = q * acc + c0 * x[t] - c_last * x[t - length]
        out[t] = acc


@njit(cache=True)
def ema_err_nb(alpha, length, scale):
    """Bound of :func:`ema_rows_nb` rows (see the module docstring)."""
    return (6.0 * length + 16.0 + 50.0 / alpha) * U2 * scale


@njit(cache=True)
def sma_err_nb(w, n, scale):
    """Bound of :func:`sma_rows_nb` rows of window ``w`` over ``n`` bars, ``scale = max|x|``."""
    return ((w + 8.0) * U2 + n * w * TINY) * scale


@njit(cache=True)
def std_err_nb(w, n, scale):
    """Bound of :func:`std_rows_nb` rows of window ``w`` over ``n`` bars, ``scale = max|x|``."""
    return (math.sqrt(16.0 * U2) + (3.0 * w + 12.0) * U2 + n * w * TINY) * scale


@njit(cache=True, parallel=True)
def _window_rows_nb(x, windows, std):
    # the SMA (std False) or population std (std True) rows of every window, with their bounds
    rows = np.empty((windows.shape[0], x.shape[0]))
    err = np.empty(windows.shape[0])
    scale = max_abs_nb(x)
    for k in prange(windows.shape[0]):
        if std:
            _std_row_nb(x, windows[k], rows[k])
            err[k] = std_err_nb(windows[k], x.shape[0], scale)
        else:
            _sma_row_nb(x, windows[k], rows[k])
            err[k] = sma_err_nb(windows[k], x.shape[0], scale)
    return rows, err


@njit(cache=True)
def sma_rows_nb(x, windows):
    """``(rows, err)``: the SMA of every window and its bound.

    Examples
    --------
    >>> import numpy as np
    >>> from quantlib.core.indicators_nb import rolling_mean_nb
    >>> x = np.linspace(100.0, 110.0, 50)
    >>> rows, err = sma_rows_nb(x, np.array([5, 20]))
    >>> bool(np.nanmax(np.abs(rows[1] - rolling_mean_nb(x, 20))) <= err[1] < 1e-10)
    True
    """
    return _window_rows_nb(x, windows, False)


@njit(cache=True)
def std_rows_nb(x, windows):
    """``(rows, err)``: the population rolling std of every window and its bound."""
    return _window_rows_nb(x, windows, True)


@njit(cache=True, parallel=True)
def ema_rows_nb(x, lengths, alphas):
    """``(rows, err)``: the EMA of ``alphas[k]`` truncated to ``lengths[k]`` bars (the kinds'
    ``fir_ema_nb``) and its bound."""
    rows = np.empty((lengths.shape[0], x.shape[0]))
    err = np.empty(lengths.shape[0])
    scale = max_abs_nb(x)
    for k in prange(lengths.shape[0]):
        _fir_row_nb(x, 0, alphas[k], fir_weights_nb(alphas[k], lengths[k]), rows[k])
        err[k] = ema_err_nb(alphas[k], lengths[k], scale)
    return rows, err


@njit(cache=True, parallel=True)
def rsi_rows_nb(close, lengths, alphas):
    """``(rows, bound)``: the Wilder RSI (the kinds' ``fir_rsi_nb`` over ``lengths[k]``
    changes) and its bound at every bar (inf where the value cannot be certified)."""
    n = close.shape[0]
    up, down = np.zeros(n), np.zeros(n)
    for t in range(1, n):
        change = close[t] - close[t - 1]
        if change > 0:
            up[t] = change
        else:
            down[t] = -change
    scale_up, scale_down = max_abs_nb(up), max_abs_nb(down)
    if not math.isfinite(max_abs_nb(close)):
        scale_up = scale_down = np.inf
    rows = np.empty((lengths.shape[0], n))
    bound = np.empty((lengths.shape[0], n))
    for k in prange(lengths.shape[0]):
        weights = fir_weights_nb(alphas[k], lengths[k])
        gain, loss = np.empty(n), np.empty(n)
        _fir_row_nb(up, 1, alphas[k], weights, gain)
        _fir_row_nb(down, 1, alphas[k], weights, loss)
        e_gain = ema_err_nb(alphas[k], lengths[k], scale_up)
        e_loss = ema_err_nb(alphas[k], lengths[k], scale_down)
        e = e_gain + e_loss
        for t in range(n):
            total = gain[t] + loss[t]
            if math.isnan(total):
                rows[k, t], bound[k, t] = np.nan, np.inf
            elif total > 2.0 * e:
                rows[k, t] = 100.0 * gain[t] / total
                bound[k, t] = 100.0 * e / (total - e) + 1200.0 * U2
            else:
                rows[k, t], bound[k, t] = 50.0, np.inf
    return rows, bound


@njit(cache=True)
def _block_scan_nb(x, w, out, sign):
    """Rolling max (``sign = 1``) or min (``sign = -1``) of ``w`` bars in O(n): the best of a
    block suffix and the next block's prefix (van Herk / Gil-Werman)."""
    n = x.shape[0]
    prefix, suffix = np.empty(n), np.empty(n)
    pos = 0  # position inside the block (a counter: an integer modulo per bar costs more)
    for i in range(n):
        v = sign * x[i]
        prefix[i] = v if pos == 0 or v > prefix[i - 1] else prefix[i - 1]
        pos = pos + 1 if pos + 1 < w else 0
    pos = (n - 1) % w
    for i in range(n - 1, -1, -1):
        v = sign * x[i]
        suffix[i] = v if pos == w - 1 or i == n - 1 or v > suffix[i + 1] else suffix[i + 1]
        pos = pos - 1 if pos > 0 else w - 1
    for t in range(n):
        if t < w - 1:
            out[t] = np.nan
        else:
            a, b = suffix[t - w + 1], prefix[t]
            out[t] = sign * (a if a > b else b)


@njit(cache=True, parallel=True)
def extreme_rows_nb(x, windows, sign):
    """Rolling max (``sign = 1``) or min (``sign = -1``) of every window, exact."""
    rows = np.empty((windows.shape[0], x.shape[0]))
    for k in prange(windows.shape[0]):
        _block_scan_nb(x, windows[k], rows[k], float(sign))
    return rows


# --- the kinds' own values at one bar (the exact path) ----------------------------------------
@njit(cache=True)
def exact_sma_nb(x, t, w):
    return rolling_mean_nb(x[t - w + 1:t + 1], w)[w - 1]


@njit(cache=True)
def exact_std_nb(x, t, w):
    return rolling_std_nb(x[t - w + 1:t + 1], w)[w - 1]


@njit(cache=True)
def exact_ema_nb(x, t, alpha, length):
    return fir_ema_nb(x[t - length + 1:t + 1], alpha, length)[length - 1]


@njit(cache=True)
def exact_rsi_nb(close, t, alpha, length):
    return fir_rsi_nb(close[t - length:t + 1], alpha, length)[length]


@njit(cache=True)
def exact_macd_nb(close, t, alpha_f, len_f, alpha_s, len_s, alpha_g, len_g):
    """``(line, signal_line)`` of the macd kind at bar ``t`` (``t >= len_s + len_g - 2``)."""
    seg = close[t - len_g - len_s + 2:t + 1]
    line = fir_ema_nb(seg, alpha_f, len_f) - fir_ema_nb(seg, alpha_s, len_s)
    tail = line[line.shape[0] - len_g:]
    return tail[len_g - 1], fir_ema_nb(tail, alpha_g, len_g)[len_g - 1]
