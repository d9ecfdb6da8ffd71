"""Each built-in kind's signal against a straightforward pandas/numpy computation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numpy.lib.stride_tricks import sliding_window_view

from quantlib.core import get_kind
from quantlib.core.kinds import BUILTIN_KINDS, EMA_MEMORY
from quantlib.data import load


@pytest.fixture(scope="module")
def df() -> pd.DataFrame:
    return load("sample:seed=21,bars=1500,timeframe=1h")


def _fir(x: np.ndarray, alpha: float, length: int) -> np.ndarray:
    """Truncated, renormalised exponential filter via an explicit window matrix."""
    w = alpha * (1 - alpha) ** np.arange(length)
    w /= w.sum()
    out = np.full(len(x), np.nan)
    out[length - 1:] = sliding_window_view(x, length)[:, ::-1] @ w
    return out


def _assert_levels(got, up_margin, down_margin, warmup, tol=1e-9):
    """got must be +1 where up_margin > tol, -1 where down_margin > tol, 0 where both < -tol;
    bars within tol of a threshold (float noise between implementations) are skipped."""
    got = np.asarray(got)
    assert (got[:warmup] == 0).all()
    up, down = np.asarray(up_margin)[warmup:], np.asarray(down_margin)[warmup:]
    tail = got[warmup:]
    assert (tail[up > tol] == 1).all()
    assert (tail[down > tol] == -1).all()
    assert (tail[(up < -tol) & (down < -tol)] == 0).all()
    ambiguous = (np.abs(up) <= tol) | (np.abs(down) <= tol)
    assert ambiguous.mean() < 0.01
    assert len(set(tail)) >= 2  # the example exercises more than one state


def test_ma_cross(df):
    p = {"fast": 7, "slow": 30}
    fast = df["close"].rolling(7).mean().to_numpy()
    slow = df["close"].rolling(30).mean().to_numpy()
    tol = 1e-9 * df["close"].max()
    _assert_levels(get_kind("ma_cross").signals(df, p), fast - slow, slow - fast, 29, tol)


def test_ema_cross_is_a_truncated_ema(df):
    p = {"fast": 6, "slow": 20}
    close = df["close"].to_numpy()
    fast = _fir(close, 2 / 7, EMA_MEMORY * 6)
    slow = _fir(close, 2 / 21, EMA_MEMORY * 20)
    warmup = EMA_MEMORY * 20 - 1
    tol = 1e-9 * close.max()
    _assert_levels(get_kind("ema_cross").signals(df, p), fast - slow, slow - fast, warmup, tol)
    # ... and it is an EMA: within 0.1 % of the classic infinite recursion once warmed up
    classic = df["close"].ewm(span=20, adjust=False).mean().to_numpy()
    np.testing.assert_allclose(slow[200:], classic[200:], rtol=1e-3)


def test_rsi_reversion(df):
    p = {"window": 10, "lower": 35.0, "upper": 65.0}
    delta = df["close"].diff().to_numpy()[1:]
    length = 2 * EMA_MEMORY * 10
    gain = _fir(np.clip(delta, 0, None), 0.1, length)
    loss = _fir(np.clip(-delta, 0, None), 0.1, length)
    rsi = np.r_[np.nan, 100 * gain / (gain + loss)]
    _assert_levels(get_kind("rsi_reversion").signals(df, p), 35 - rsi, rsi - 65, length, 1e-7)
    # close to the classic Wilder RSI (infinite recursion) once warmed up
    d = df["close"].diff()
    up = d.clip(lower=0).ewm(alpha=0.1, adjust=False).mean()
    dn = (-d).clip(lower=0).ewm(alpha=0.1, adjust=False).mean()
    classic = (100 * up / (up + dn)).to_numpy()
    np.testing.assert_allclose(rsi[300:], classic[300:], atol=0.5)


def test_bollinger_reversion(df):
    p = {"window": 25, "k": 1.5}
    mid = df["close"].rolling(25).mean()
    std = df["close"].rolling(25).std(ddof=0)
    close = df["close"]
    lower, upper = (mid - 1.5 * std).to_numpy(), (mid + 1.5 * std).to_numpy()
    tol = 1e-8 * close.max()
    _assert_levels(get_kind("bollinger_reversion").signals(df, p), lower - close.to_numpy(),
                   close.to_numpy() - upper, 24, tol)


def test_donchian_breakout(df):
    window = 15
    got = get_kind("donchian_breakout").signals(df, {"window": window})
    upper = df["high"].rolling(window).max().shift(1)
    lower = df["low"].rolling(window).min().shift(1)
    expected = []
    for t in range(len(df)):  # latest breakout among the last `window` bars, by hand
        value = 0.0
        for s in range(max(t - window + 1, 0), t + 1):
            if df["close"].iloc[s] > upper.iloc[s]:
                value = 1.0
            elif df["close"].iloc[s] < lower.iloc[s]:
                value = -1.0
        expected.append(value if t >= 2 * window - 1 else 0.0)
    np.testing.assert_array_equal(got, expected)
    assert {-1.0, 1.0} <= set(got)


def test_macd(df):
    p = {"fast": 8, "slow": 21, "signal": 5}
    close = df["close"].to_numpy()
    line = _fir(close, 2 / 9, EMA_MEMORY * 8) - _fir(close, 2 / 22, EMA_MEMORY * 21)
    start = EMA_MEMORY * 21 - 1
    sig = np.full(len(close), np.nan)
    sig[start:] = _fir(line[start:], 2 / 6, EMA_MEMORY * 5)
    warmup = start + EMA_MEMORY * 5 - 1
    tol = 1e-9 * close.max()
    _assert_levels(get_kind("macd").signals(df, p), line - sig, sig - line, warmup, tol)


@pytest.mark.parametrize("name", BUILTIN_KINDS)
def test_defaults_are_valid_and_targets_bounded(df, name):
    kind = get_kind(name)
    target = kind.signals(df, kind.defaults())
    assert set(np.unique(target)) <= {-1.0, 0.0, 1.0}
    assert (target[: kind.warmup(kind.defaults())] == 0).all()
    for p in kind.params:  # a declared space: typed, bounded, with a sweep step
        assert p.low is not None and p.high is not None and p.step is not None
        assert p.low <= p.default <= p.high
