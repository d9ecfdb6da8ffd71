"""Shared fixtures for the regime tests: one synthetic market and fitted models (session scope,
so each expensive fit runs once)."""

from __future__ import annotations

import numpy as np
import pytest

from quantlib.data import synthetic_ohlcv
from quantlib.regime import GaussianHMMRegime, regime_features

# The ground-truth recovery tests run on a market with long, well-separated regimes (stays of
# ~50, ~33 and ~20 hours; hourly vol 0.4% / 0.9% / 2.0%; Student-t(4) shocks): what they check
# is that a model finds regimes a 12-bar window can see. The calibrated default market (regimes
# of ~14, ~8 and ~5 hours fitted to BTC) is harder by design; its statistics are tested in
# tests/data/test_synthetic_calibration.py.
STICKY_MARKET = dict(
    transition_matrix=np.array([[0.980, 0.015, 0.005], [0.020, 0.970, 0.010],
                                [0.020, 0.030, 0.950]]),
    hourly_vol=np.array([0.004, 0.009, 0.020]),
    hourly_drift=np.array([0.0, 0.0006, -0.0012]),
    tail_df=4.0,
)


@pytest.fixture(scope="session")
def market():
    return synthetic_ohlcv(6000, timeframe="1h", seed=11, **STICKY_MARKET)


@pytest.fixture(scope="session")
def returns_X(market):
    return regime_features(market.ohlcv, ["returns"])


@pytest.fixture(scope="session")
def hmm3(returns_X):
    return GaussianHMMRegime(n_regimes=3, n_restarts=3, random_state=0).fit(returns_X)
