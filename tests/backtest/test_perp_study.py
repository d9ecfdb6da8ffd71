"""Perp research helpers: pnl decomposition, leverage sweep, returns of a wiped-out account."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantlib.backtest.perp import PerpConfig, run_perp_backtest
from quantlib.backtest.perp_study import (
    funding_breakdown,
    leverage_sweep,
    liquidation_distance,
    perp_returns,
)
from quantlib.data import load_perp
from quantlib.errors import ParameterError


@pytest.fixture(scope="module")
def perp():
    return load_perp("sample:seed=3,bars=800,timeframe=1h")


def test_the_breakdown_adds_up_from_the_fills_and_funding(perp):
    res = run_perp_backtest("ma_cross", perp.ohlcv, [{"fast": 5, "slow": 20},
                                                     {"fast": 10, "slow": 60}],
                            PerpConfig(leverage=4, size=0.5), funding=perp.funding,
                            mark=perp.mark)
    table = funding_breakdown(res)
    for combo in (0, 1):
        fills = res.fills_of(combo)
        # price pnl recomputed from the fill log: realised pnl of closes and liquidations plus
        # the open position marked to the last close
        realised = fills.loc[fills["kind"] != "open", "pnl"].sum()
        qty = res.positions[combo].iloc[-1]
        opens = fills[fills["kind"] == "open"]
        unrealised = 0.0 if qty == 0 else qty * (perp.ohlcv["close"].iloc[-1]
                                                 - opens["price"].iloc[-1])
        assert table.loc[combo, "price_pnl"] == pytest.approx(realised + unrealised, rel=1e-9)
        assert table.loc[combo, "funding_net"] == pytest.approx(
            res.extras["funding"][combo].sum(), rel=1e-12)
        assert table.loc[combo, "fees"] == pytest.approx(fills["fee"].sum(), rel=1e-12)
    assert (table["funding_net"] != 0).all()


def test_liquidation_distance_matches_the_liquidation_price():
    from quantlib.live.brokers.perp_rule_nb import liquidation_price_nb

    for lev, mmr in ((2, 0.005), (10, 0.01), (40, 0.004)):
        long, short = liquidation_distance(lev, mmr)
        # a position of 1 unit at 100 posts 100 / lev
        assert 1 - liquidation_price_nb(1.0, 100.0, 100.0 / lev, mmr) / 100 == pytest.approx(long)
        assert liquidation_price_nb(-1.0, 100.0, 100.0 / lev, mmr) / 100 - 1 == pytest.approx(short)


def test_leverage_sweep_reruns_the_same_combination(perp):
    cfg = PerpConfig(size=0.5)
    table = leverage_sweep("ma_cross", perp.ohlcv, {"fast": 5, "slow": 20}, [1, 5, 60], cfg,
                           funding=perp.funding, mark=perp.mark)
    direct = run_perp_backtest("ma_cross", perp.ohlcv, {"fast": 5, "slow": 20},
                               PerpConfig(size=0.5, leverage=5), funding=perp.funding,
                               mark=perp.mark)
    assert table.loc[5, "total_return"] == direct.metrics.loc[0, "total_return"]
    assert table.loc[1, "n_liquidations"] == 0 and table.loc[60, "n_liquidations"] > 0
    with pytest.raises(ParameterError, match="leverages"):
        leverage_sweep("ma_cross", perp.ohlcv, {}, [], cfg)


def test_a_wiped_out_account_earns_zero_returns_afterwards():
    index = pd.date_range("2024-01-01", periods=5, freq="1h", tz="UTC")

    class Result:
        equity = pd.DataFrame({0: [100.0, 50.0, 0.0, 0.0, 0.0], 1: [100.0, 110.0, 99.0,
                                                                     99.0, 108.9]}, index=index)

    returns = perp_returns(Result())
    np.testing.assert_allclose(returns[0], [0.0, -0.5, -1.0, 0.0, 0.0])
    np.testing.assert_allclose(returns[1], [0.0, 0.1, -0.1, 0.0, 0.1])
