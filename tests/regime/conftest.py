"""Shared fixtures for the regime tests: one synthetic market and fitted models (session scope,
so each expensive fit runs once)."""

from __future__ import annotations

import pytest

from quantlib.data import synthetic_ohlcv
from quantlib.regime import GaussianHMMRegime, regime_features


@pytest.fixture(scope="session")
def market():
    # 3 regimes, hourly vol 0.4% / 0.9% / 2.0%, known transition matrix (quantlib.data default).
    return synthetic_ohlcv(6000, timeframe="1h", seed=11)


@pytest.fixture(scope="session")
def returns_X(market):
    return regime_features(market.ohlcv, ["returns"])


@pytest.fixture(scope="session")
def hmm3(returns_X):
    return GaussianHMMRegime(n_regimes=3, n_restarts=3, random_state=0).fit(returns_X)
