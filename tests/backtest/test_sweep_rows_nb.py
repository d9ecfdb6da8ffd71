"""The O(bars) indicator rows of fused sweeps (``quantlib.backtest.sweep_rows_nb``) against the
kinds' from-scratch rows (``quantlib.core.indicators_nb``, the independent computation):
NaN at the same bars, every value within the row's stated bound (random walks at price scales
from 1e-4 to 1e6, flat stretches, real BTC/USDT hours), rolling max/min and the one-bar exact
values bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quantlib.backtest import sweep_rows_nb as rows
from quantlib.core import indicators_nb as nb
from quantlib.core import kinds as K


def _walk(seed: int, n: int, scale: float, flat: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    steps = rng.normal(0.0, 0.02, n) * (rng.random(n) > flat)
    return scale * np.exp(np.cumsum(steps))


def _within(approx: np.ndarray, exact: np.ndarray, bound, what: str) -> None:
    assert (np.isnan(approx) == np.isnan(exact)).all(), f"{what}: NaN bars differ"
    ok = ~np.isnan(exact)
    gap = np.abs(approx[ok] - exact[ok])
    bound = np.broadcast_to(bound, exact.shape)[ok]
    assert (gap <= bound).all(), f"{what}: gap {gap.max()} above the bound"


def _check_all(x: np.ndarray) -> None:
    windows = np.array([2, 5, 17, 60], dtype=np.int64)
    sma, e_sma = rows.sma_rows_nb(x, windows)
    std, e_std = rows.std_rows_nb(x, windows)
    for k, w in enumerate(windows):
        _within(sma[k], nb.rolling_mean_nb(x, w), e_sma[k], f"sma {w}")
        _within(std[k], nb.rolling_std_nb(x, w), e_std[k], f"std {w}")
        np.testing.assert_array_equal(rows.extreme_rows_nb(x, windows[k:k + 1], 1)[0],
                                      nb.rolling_max_nb(x, w))
        np.testing.assert_array_equal(rows.extreme_rows_nb(x, windows[k:k + 1], -1)[0],
                                      nb.rolling_min_nb(x, w))
    spans = [2, 9, 26]
    lengths = np.array([K.ema_length(s) for s in spans], dtype=np.int64)
    alphas = np.array([2.0 / (s + 1.0) for s in spans])
    ema, e_ema = rows.ema_rows_nb(x, lengths, alphas)
    for k in range(len(spans)):
        _within(ema[k], nb.fir_ema_nb(x, alphas[k], lengths[k]), e_ema[k], f"ema {spans[k]}")
    rsi_lengths = np.array([2 * K.ema_length(w) for w in (2, 14)], dtype=np.int64)
    rsi_alphas = np.array([1.0 / 2, 1.0 / 14])
    rsi, e_rsi = rows.rsi_rows_nb(x, rsi_lengths, rsi_alphas)
    for k in range(2):
        exact = nb.fir_rsi_nb(x, rsi_alphas[k], rsi_lengths[k])
        _within(np.where(np.isinf(e_rsi[k]), exact, rsi[k]), exact,
                np.where(np.isinf(e_rsi[k]), 0.0, e_rsi[k]), f"rsi {k}")


@settings(max_examples=30, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(1, 600),
       scale=st.sampled_from([1e-4, 1.0, 100.0, 3e4, 1e6]), flat=st.sampled_from([0.0, 0.5]))
def test_rows_stay_within_their_bounds(seed, n, scale, flat):
    _check_all(_walk(seed, n, scale, flat))


def test_rows_on_real_hours(shared_data):
    close = shared_data("btc_usdt_1h_2017_2020.csv")["close"].to_numpy()[:6000]
    _check_all(np.ascontiguousarray(close))


def test_bounds_are_small_enough_to_decide_almost_every_bar():
    x = _walk(4, 5000, 3e4, 0.0)
    _, e_sma = rows.sma_rows_nb(x, np.array([200], dtype=np.int64))
    _, e_ema = rows.ema_rows_nb(x, np.array([560], dtype=np.int64), np.array([2 / 141]))
    _, e_std = rows.std_rows_nb(x, np.array([200], dtype=np.int64))
    assert e_sma[0] < 1e-9 * x.max() and e_ema[0] < 1e-9 * x.max()
    assert e_std[0] < 1e-6 * x.max()


def test_a_constant_series_has_no_move_so_its_rsi_is_left_to_the_exact_path():
    x = np.full(100, 5.0)
    rsi, bound = rows.rsi_rows_nb(x, np.array([8], dtype=np.int64), np.array([0.25]))
    assert np.isinf(bound[0]).all()
    assert (nb.fir_rsi_nb(x, 0.25, 8)[8:] == 50.0).all()


@pytest.mark.parametrize("t", [59, 60, 333, 599])
def test_one_bar_exact_values_are_the_kinds_own(t):
    x = _walk(9, 600, 100.0, 0.3)
    assert rows.exact_sma_nb(x, t, 60) == nb.rolling_mean_nb(x, 60)[t]
    assert rows.exact_std_nb(x, t, 60) == nb.rolling_std_nb(x, 60)[t]
    assert rows.exact_ema_nb(x, t, 2 / 16, 60) == nb.fir_ema_nb(x, 2 / 16, 60)[t]
    assert rows.exact_rsi_nb(x, t, 1 / 7, 56) == nb.fir_rsi_nb(x, 1 / 7, 56)[t]
    if t >= 40 + 12 - 2:
        line = nb.fir_ema_nb(x, 2 / 5, 12) - nb.fir_ema_nb(x, 2 / 11, 40)
        signal = nb.fir_ema_nb(line, 2 / 4, 12)
        assert rows.exact_macd_nb(x, t, 2 / 5, 12, 2 / 11, 40, 2 / 4, 12) == (line[t],
                                                                             signal[t])
