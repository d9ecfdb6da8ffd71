"""The synthetic default market: valid, reproducible, and true to its declared parameters."""

from __future__ import annotations

import numpy as np
import pytest

from quantlib.data import synthetic_ohlcv, validate_ohlcv
from quantlib.errors import ParameterError


@pytest.fixture(scope="module")
def market():
    return synthetic_ohlcv(60_000, seed=11)


def test_valid_canonical_and_labelled_synthetic(market):
    summary = validate_ohlcv(market.ohlcv)
    assert summary.n_missing == 0 and summary.timeframe == "1h"
    assert market.ohlcv.attrs["source"] == "synthetic"
    assert market.regimes.index.equals(market.ohlcv.index)


def test_same_seed_same_market_other_seed_other_market():
    a, b, c = (synthetic_ohlcv(500, seed=s).ohlcv for s in (1, 1, 2))
    assert a.equals(b) and not a.equals(c)


def test_empirical_transition_matrix_matches_the_declared_one(market):
    states = market.regimes.to_numpy()
    k = market.transition_matrix.shape[0]
    counts = np.zeros((k, k))
    np.add.at(counts, (states[:-1], states[1:]), 1)
    visits = counts.sum(axis=1, keepdims=True)
    empirical = counts / visits
    # Each row is a multinomial sample of its visits: every entry within 4 standard errors
    # sqrt(p (1 - p) / visits) of the declared probability (plus rounding slack).
    declared = market.transition_matrix
    tolerance = 4 * np.sqrt(declared * (1 - declared) / visits) + 1e-3
    assert np.all(np.abs(empirical - declared) <= tolerance), (empirical, declared, tolerance)


def test_per_regime_volatility_and_ordering(market):
    df = market.ohlcv
    log_ret = np.log(df["close"].to_numpy() / df["open"].to_numpy())
    states = market.regimes.to_numpy()
    realised = np.array([log_ret[states == k].std() for k in range(len(market.regime_vol))])
    np.testing.assert_allclose(realised, market.regime_vol, rtol=0.05)
    assert np.all(np.diff(realised) > 0)  # regime 0 is the calmest


def test_fat_tails(market):
    df = market.ohlcv
    log_ret = np.log(df["close"] / df["open"])
    calm = log_ret[market.regimes == 0]
    standardised = (calm - calm.mean()) / calm.std()
    # A bar sums `substeps` (8) Student-t(df) shocks: excess kurtosis 6 / (df - 4) / 8 (0.375
    # for the default df = 6), far from a Gaussian's 0 +- 0.03 on these ~26,000 calm bars.
    from quantlib.data.synthetic import DEFAULT_TAIL_DF

    expected = 6.0 / (DEFAULT_TAIL_DF - 4.0) / 8
    assert (standardised**4).mean() - 3 == pytest.approx(expected, abs=0.15)
    assert (standardised**4).mean() - 3 > 0.2


def test_bars_are_consistent_with_the_path(market):
    df = market.ohlcv
    assert (df["open"].iloc[1:].to_numpy() == df["close"].iloc[:-1].to_numpy()).all()
    assert (df["high"] >= df[["open", "close"]].max(axis=1)).all()
    assert (df["low"] <= df[["open", "close"]].min(axis=1)).all()


def test_timeframe_scales_volatility():
    hourly = synthetic_ohlcv(20_000, "1h", seed=4)
    four = synthetic_ohlcv(20_000, "4h", seed=4)
    np.testing.assert_allclose(four.regime_vol, hourly.regime_vol * 2.0)


def test_bad_parameters_are_named():
    with pytest.raises(ParameterError, match="n_bars"):
        synthetic_ohlcv(1)
    with pytest.raises(ParameterError, match="transition_matrix rows"):
        synthetic_ohlcv(10, transition_matrix=np.array([[0.5, 0.4], [0.5, 0.5]]))
    with pytest.raises(ParameterError, match="timeframe '7x'"):
        synthetic_ohlcv(10, timeframe="7x")
