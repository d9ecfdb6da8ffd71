"""Per-regime attribution checked against whole-sample figures and hand computation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantlib.backtest import compute_metrics, run_backtest
from quantlib.errors import DataError
from quantlib.regime.attribution import regime_attribution


@pytest.fixture(scope="module")
def result(market):
    return run_backtest("ma_cross", market.ohlcv.iloc[:3000], {"fast": 8, "slow": 30})


def test_parts_add_up_to_the_whole(market, result):
    table = regime_attribution(result, market.regimes)
    equity = result.equity.iloc[:, 0]
    assert table["bars"].sum() == len(equity)
    assert table["time_share"].sum() == pytest.approx(1.0)
    # Compounded regime returns multiply to the whole-sample growth.
    assert np.prod(1 + table["total_return"]) == pytest.approx(equity.iloc[-1] / equity.iloc[0])
    assert table["n_fills"].sum() == len(result.fills)
    assert table["n_trades"].sum() == len(result.trades)


def test_sharpe_matches_metrics_definition(market, result):
    # One label for every bar: the regime Sharpe is the metrics module's Sharpe.
    one = pd.Series(0, index=result.equity.index)
    table = regime_attribution(result, one)
    assert table.loc[0, "sharpe"] == pytest.approx(compute_metrics(result.equity.iloc[:, 0],
                                                                   timeframe="1h")["sharpe"])
    # Hand computation for one regime.
    r = result.equity.iloc[:, 0].pct_change()
    mask = (market.regimes.reindex(r.index) == 2).to_numpy()
    sub = r[mask].dropna()
    hand = sub.mean() / sub.std(ddof=1) * np.sqrt(365 * 24)
    assert regime_attribution(result, market.regimes).loc[2, "sharpe"] == pytest.approx(hand)


def test_missing_labels_are_an_error(result):
    with pytest.raises(DataError, match="no label"):
        regime_attribution(result, pd.Series(0, index=result.equity.index[:10]))
