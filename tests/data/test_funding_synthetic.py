"""Synthetic perp companions: funding and mark follow the process their docstrings state."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantlib.data import synthetic_ohlcv, validate_ohlcv
from quantlib.data.synthetic import synthetic_funding, synthetic_mark
from quantlib.errors import ParameterError


def _bars(n: int, timeframe: str = "8h", start: str = "2024-01-01") -> pd.DataFrame:
    """A frame with only the index and attrs the companions read (the prices do not matter)."""
    index = pd.date_range(start, periods=n, freq=pd.Timedelta(timeframe), tz="UTC",
                          name="timestamp")
    frame = pd.DataFrame({"close": np.ones(n)}, index=index)
    frame.attrs.update(timeframe=timeframe, symbol="SYN/USD")
    return frame


def _lag1(x: np.ndarray) -> float:
    """OLS slope of x_k on x_{k-1} (demeaned): the AR(1) coefficient's estimate."""
    a, b = x[:-1] - x.mean(), x[1:] - x.mean()
    return float(a @ b / (a @ a))


@pytest.fixture(scope="module")
def long_funding() -> pd.DataFrame:
    return synthetic_funding(_bars(120_000), seed=4)


def test_funding_mean_std_and_ar_match_the_stated_process(long_funding):
    rates = long_funding["funding_rate"].to_numpy()
    n, ar, std, base = len(rates), 0.9, 1e-4, 1e-4
    assert n == 120_000  # one payment per 8h bar
    # Standard error of an AR(1) sample mean: std * sqrt((1 + ar) / (1 - ar) / n).
    assert abs(rates.mean() - base) < 4 * std * np.sqrt((1 + ar) / (1 - ar) / n)
    # Lag-1 OLS estimate: standard error ~ sqrt((1 - ar^2) / n).
    assert abs(_lag1(rates) - ar) < 4 * np.sqrt((1 - ar**2) / n)
    assert abs(rates.std() / std - 1) < 0.03


def test_funding_times_are_00_08_16_utc_within_the_bars_span():
    # Bars 05:00 .. 2024-01-02 00:00 (20 hourly bars) end at 01:00 the next day, so the
    # payments inside are 08:00, 16:00 and 00:00 (hand-listed), none before the first bar.
    bars = synthetic_ohlcv(20, seed=1, start="2024-01-01 05:00").ohlcv
    funding = synthetic_funding(bars, seed=1)
    expected = pd.DatetimeIndex(["2024-01-01 08:00", "2024-01-01 16:00", "2024-01-02 00:00"],
                                tz="UTC", name="timestamp")
    assert funding.index.equals(expected)
    assert list(funding.columns) == ["funding_rate"] and funding["funding_rate"].dtype == np.float64
    assert funding.attrs["funding_interval"] == "8h" and funding.attrs["source"] == "synthetic"
    four_hourly = synthetic_funding(bars, seed=1, interval_hours=4)
    assert list(four_hourly.index.hour) == [8, 12, 16, 20, 0]


def test_funding_deterministic_per_seed_and_independent_of_the_prices():
    a = synthetic_ohlcv(500, seed=1).ohlcv
    b = synthetic_ohlcv(500, seed=2).ohlcv  # other prices, same index
    assert synthetic_funding(a, seed=3).equals(synthetic_funding(b, seed=3))
    assert not synthetic_funding(a, seed=3).equals(synthetic_funding(a, seed=4))


def test_funding_clipped_to_the_cap():
    rates = synthetic_funding(_bars(20_000), seed=0, premium_std=5e-3, cap=2e-3)["funding_rate"]
    assert rates.max() == pytest.approx(2e-3) and rates.min() == pytest.approx(-2e-3)
    assert rates.abs().max() <= 2e-3
    # Unclipped values are the base plus the premium: about a third of them lie inside the cap.
    assert 0.2 < (rates.abs() < 2e-3).mean() < 0.5


def test_mark_is_valid_ohlcv_with_the_stated_basis():
    market = synthetic_ohlcv(40_000, seed=5).ohlcv
    mark = synthetic_mark(market, seed=5)
    assert validate_ohlcv(mark, "1h").n_missing == 0
    assert mark.index.equals(market.index) and (mark["volume"] == 0).all()
    basis_close = (mark["close"] / market["close"] - 1).to_numpy()
    basis_open = (mark["open"] / market["open"] - 1).to_numpy()
    # The basis at a bar's open is the one at the previous bar's close (one path, per bar close).
    np.testing.assert_allclose(basis_open[1:], basis_close[:-1], atol=1e-12)
    n = len(basis_close)
    assert abs(basis_close.std() / 2e-4 - 1) < 0.05
    assert abs(_lag1(basis_close) - 0.5) < 4 * np.sqrt((1 - 0.25) / n)
    assert synthetic_mark(market, seed=5).equals(mark)
    assert not synthetic_mark(market, seed=6).equals(mark)


@pytest.mark.parametrize("kwargs, word", [
    ({"ar": 1.0}, "ar"), ({"ar": -0.1}, "ar"), ({"cap": 0}, "cap"),
    ({"premium_std": -1e-4}, "premium_std"), ({"interval_hours": 5}, "interval_hours"),
])
def test_bad_funding_parameters_are_named(kwargs, word):
    with pytest.raises(ParameterError, match=word):
        synthetic_funding(_bars(10), **kwargs)


def test_bad_frames_are_refused():
    with pytest.raises(ParameterError, match="synthetic_funding: ohlcv must be"):
        synthetic_funding([1, 2, 3])
    with pytest.raises(ParameterError, match="synthetic_mark: ohlcv needs at least 2 bars"):
        synthetic_mark(_bars(1))
    with pytest.raises(ParameterError, match="basis_ar"):
        synthetic_mark(_bars(10), basis_ar=1.5)
