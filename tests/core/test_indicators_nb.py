"""The one indicator module: each kernel against a plain-Python or numpy reference, the
``start`` contract (rows from ``start`` are the same bits), and the one true range that the
grid engine and the exchange grid share."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from quantlib.core import indicators_nb as nb


def _ohlc(n: int = 300, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, n)))
    prev = np.r_[close[0], close[:-1]]
    high = np.maximum(prev, close) * (1 + rng.uniform(0, 0.01, n))
    low = np.minimum(prev, close) * (1 - rng.uniform(0, 0.01, n))
    return high, low, close


def test_rolling_max_and_min_pick_numpys_extremes():
    high, low, _ = _ohlc()
    np.testing.assert_array_equal(nb.rolling_max_nb(high, 9)[8:],
                                  sliding_window_view(high, 9).max(axis=1))
    np.testing.assert_array_equal(nb.rolling_min_nb(low, 9)[8:],
                                  sliding_window_view(low, 9).min(axis=1))
    assert np.isnan(nb.rolling_max_nb(high, 9)[:8]).all()


def test_rolling_mean_and_std_sum_each_window_oldest_first():
    _, _, close = _ohlc()
    w, t = 17, 123
    acc = 0.0
    for v in close[t - w + 1:t + 1]:  # the documented order, by hand
        acc += float(v)
    mean = acc / w
    assert nb.rolling_mean_nb(close, w)[t] == mean
    sq = 0.0
    for v in close[t - w + 1:t + 1]:
        sq += (float(v) - mean) ** 2
    assert nb.rolling_std_nb(close, w)[t] == math.sqrt(sq / w)


@pytest.mark.parametrize("start", [0, 40, 299, 400])
def test_start_leaves_earlier_rows_nan_and_later_rows_the_same_bits(start):
    high, low, close = _ohlc()
    calls = [
        lambda s: nb.rolling_mean_nb(close, 20, s),
        lambda s: nb.rolling_std_nb(close, 20, s),
        lambda s: nb.fir_ema_nb(close, 2 / 13, 48, s),
        lambda s: nb.fir_rsi_nb(close, 1 / 14, 56, s),
        lambda s: nb.true_range_nb(high, low, close, s),
    ]
    for call in calls:
        full, part = call(0), call(start)
        np.testing.assert_array_equal(part[start:], full[start:])
        assert np.isnan(part[:start]).all()


def test_true_range_is_wilders_and_bar_zero_has_no_previous_close():
    high, low, close = _ohlc(50)
    tr = nb.true_range_nb(high, low, close)
    assert np.isnan(tr[0])
    for t in range(1, 50):
        h, lo, p = float(high[t]), float(low[t]), float(close[t - 1])
        assert tr[t] == max(h - lo, abs(h - p), abs(lo - p))
    assert nb.true_range_bar_nb(12.0, 9.0, np.nan) == 3.0  # first bar of a series
    assert nb.true_range_bar_nb(12.0, 11.0, 8.0) == 4.0  # gap up: from the previous close


def test_mean_true_range_is_the_grid_engines_atr():
    # the engine's ATR: true ranges summed oldest first (the series' first bar counts
    # high - low), divided by the period; None-like NaN when too few bars
    high, low, close = _ohlc(40)
    period = 14
    total = 0.0
    for t in range(40 - period, 40):
        h, lo = float(high[t]), float(low[t])
        p = float(close[t - 1])
        total += max(h - lo, abs(h - p), abs(lo - p))
    assert nb.mean_true_range_nb(high, low, close, period) == total / period
    whole = nb.mean_true_range_nb(high[:3], low[:3], close[:3], 3)
    first = float(high[0] - low[0])
    rest = [max(float(high[t] - low[t]), abs(float(high[t] - close[t - 1])),
                abs(float(low[t] - close[t - 1]))) for t in (1, 2)]
    assert whole == ((first + rest[0]) + rest[1]) / 3
    assert np.isnan(nb.mean_true_range_nb(high[:5], low[:5], close[:5], 6))


def test_fir_ema_is_the_renormalised_truncated_exponential_filter():
    _, _, close = _ohlc(120)
    alpha, length, t = 2 / 11, 40, 100
    raw = [alpha * (1 - alpha) ** k for k in range(length)]
    expected = sum(r / sum(raw) * close[t - k] for k, r in enumerate(raw))
    assert nb.fir_ema_nb(close, alpha, length)[t] == pytest.approx(expected, rel=1e-14)
