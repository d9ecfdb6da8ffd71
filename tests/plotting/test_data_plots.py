"""Data figures show the data they claim to show."""

from __future__ import annotations

import numpy as np

from quantlib.data import load
from quantlib.plotting.data import (
    plot_candles,
    plot_returns_distribution,
    plot_volatility,
    return_stats,
)


def test_candles_show_the_last_bars_exactly():
    df = load("sample:bars=500,seed=2")
    fig = plot_candles(df, max_bars=120)
    candle = fig.data[0]
    assert len(candle.x) == 120
    np.testing.assert_array_equal(np.asarray(candle.close), df["close"].to_numpy()[-120:])
    np.testing.assert_array_equal(np.asarray(fig.data[1].y), df["volume"].to_numpy()[-120:])
    assert "SYNTHETIC" in fig.layout.title.text


def test_return_stats_match_numpy():
    df = load("sample:bars=2000,seed=4")
    r = np.diff(np.log(df["close"].to_numpy()))
    stats = return_stats(df)
    assert np.isclose(stats.mean_log_return, r.mean())
    assert np.isclose(stats.annualised_vol, r.std(ddof=1) * np.sqrt(365 * 24))
    assert stats.worst_bar == r.min() and stats.best_bar == r.max()


def test_volatility_is_trailing_and_annualised():
    df = load("sample:bars=400,seed=5")
    fig = plot_volatility(df, window=24)
    y = np.asarray(fig.data[0].y, dtype=float)
    r = np.diff(np.log(df["close"].to_numpy()))
    # Bar 30's value uses the 24 returns ending at bar 30 (returns 7..30 in bar numbering).
    expected = r[30 - 24:30].std(ddof=1) * np.sqrt(365 * 24)
    assert np.isclose(y[30], expected)
    assert np.isnan(y[:24]).all()


def test_distribution_overlay_integrates_to_one():
    fig = plot_returns_distribution(load("sample:bars=1000"))
    x, density = np.asarray(fig.data[1].x), np.asarray(fig.data[1].y)
    assert 0.9 < np.trapezoid(density, x) <= 1.0001
