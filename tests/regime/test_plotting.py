"""Regime figures carry the data they claim to show."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantlib.errors import DataError
from quantlib.plotting.regime import (
    plot_expected_durations,
    plot_price_regimes,
    plot_regime_probabilities,
    plot_transition_matrix,
)


def test_price_coloured_by_regime(market):
    close, regimes = market.ohlcv["close"].iloc[:500], market.regimes.iloc[:500]
    fig = plot_price_regimes(close, regimes)
    markers = fig.data[1:]
    assert sum(len(t.x) for t in markers) == 500
    for trace in markers:
        k = int(trace.name.split()[-1])
        np.testing.assert_allclose(trace.y, close[regimes == k])


def test_probability_ribbon_and_heatmap_and_durations():
    idx = pd.date_range("2024", periods=4, freq="h", tz="UTC")
    proba = pd.DataFrame({"regime_0": [1.0, 0.7, 0.2, 0.0], "regime_1": [0.0, 0.3, 0.8, 1.0]},
                         index=idx)
    fig = plot_regime_probabilities(proba)
    np.testing.assert_allclose(fig.data[1].y, proba["regime_1"])
    with pytest.raises(DataError, match="sum to 1"):
        plot_regime_probabilities(proba * 2)
    P = np.array([[0.9, 0.1], [0.25, 0.75]])
    assert np.array_equal(plot_transition_matrix(P).data[0].z, P)
    np.testing.assert_allclose(plot_expected_durations([10.0, 4.0], bar_hours=4).data[0].y,
                               [40.0, 16.0])
