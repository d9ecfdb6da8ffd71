"""The loopback Binance USD-M venue's account through real ``ccxt.binanceusdm``: hand-computed
positions, funding and refusals (Binance's codes, mapped to ccxt's exception classes)."""

from __future__ import annotations

import ccxt
import pandas as pd
import pytest

from tests.live._perp_children import SYMBOL, make_exchange_for, start_venue
from tests.support.binanceusdm_server import BinanceUsdmServer

FEE, MMR = 0.001, 0.01


def _bars() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Four hourly bars opening at 100, 110, 120, 90; mark opens 101, 111, 121, 91; one funding
    payment of +1% at the third bar's open."""
    times = pd.date_range("2024-01-01", periods=4, freq="1h", tz="UTC", name="timestamp")
    opens = [100.0, 110.0, 120.0, 90.0]
    candles = pd.DataFrame({"open": opens, "high": [o + 1 for o in opens],
                            "low": [o - 1 for o in opens], "close": opens, "volume": 1.0},
                           index=times)
    candles.attrs.update(symbol=SYMBOL, timeframe="1h")
    mark = candles + 1.0
    mark["volume"] = 0.0
    mark.attrs.update(candles.attrs)
    funding = pd.DataFrame({"funding_rate": [0.01]}, index=times[2:3])
    return candles, mark, funding


@pytest.fixture()
def venue():
    with BinanceUsdmServer(fee_rate=FEE, mmr=MMR, liq_fee=0.005) as server:
        start_venue(server, *_bars(), cash=1000.0)
        exchange = make_exchange_for(server.url)
        exchange.set_leverage(2, SYMBOL)
        exchange.set_margin_mode("isolated", SYMBOL)
        yield server, exchange
        assert server.errors == []


def _position(exchange) -> dict:
    rows = exchange.fetch_positions([SYMBOL])
    return rows[0]["info"] if rows else {}


def test_short_funding_and_flip_by_hand(venue):
    server, ex = venue
    ex.create_order(SYMBOL, "market", "sell", 2.0, None, {"clientOrderId": "s-1"})
    # at 100, 2x: margin 200 / 2, fee 0.2 -> cash 1000 - 100 - 0.2
    pos = _position(ex)
    assert float(pos["positionAmt"]) == -2.0 and float(pos["isolatedWallet"]) == 100.0
    assert ex.fetch_balance()["free"]["USDT"] == pytest.approx(899.8, abs=1e-12)
    server.advance(2)  # funding +1% at the mark open 121: a short receives 2 * 121 * 0.01
    pos = _position(ex)
    assert float(pos["isolatedWallet"]) == pytest.approx(100.0 + 2.42, abs=1e-12)
    paid = ex.fetch_funding_history(SYMBOL)
    assert [(p["amount"], p["timestamp"]) for p in paid] == [
        (pytest.approx(2.42, abs=1e-12), int(_bars()[0].index[2].value // 1_000_000))]
    # liquidation price of the short: (entry + margin / |qty|) / (1 + mmr)
    assert float(pos["liquidationPrice"]) == pytest.approx((100 + 102.42 / 2) / 1.01, rel=1e-12)
    # a 3-unit buy (not reduce-only) at 120 closes the short and opens 1 long
    ex.create_order(SYMBOL, "market", "buy", 3.0, None, {"clientOrderId": "s-2"})
    pnl = -2.0 * (120.0 - 100.0)
    cash = 899.8 + 102.42 + pnl - 3.0 * 120.0 * FEE - 1.0 * 120.0 / 2
    assert ex.fetch_balance()["free"]["USDT"] == pytest.approx(cash, abs=1e-9)
    pos = _position(ex)
    assert float(pos["positionAmt"]) == 1.0 and float(pos["entryPrice"]) == 120.0
    trades = ex.fetch_my_trades(SYMBOL)
    assert [t["fee"]["cost"] for t in trades] == pytest.approx([0.2, 0.36], abs=1e-12)
    assert [float(t["info"]["realizedPnl"]) for t in trades] == [0.0, pnl]


def test_refusals_are_binance_codes(venue):
    server, ex = venue
    # ccxt picks Binance's USD-M code table by host name (fapi.binance.com), which a loopback
    # URL is not: codes outside its common table surface as ExchangeError naming the code
    with pytest.raises(ccxt.ExchangeError, match="-2019"):  # 60 at 100, 2x: 3006 > 1000
        ex.create_order(SYMBOL, "market", "buy", 60.0, None, {"clientOrderId": "r-1"})
    with pytest.raises(ccxt.ExchangeError, match="-2022"):  # nothing to reduce
        ex.create_order(SYMBOL, "market", "sell", 1.0, None,
                        {"clientOrderId": "r-2", "reduceOnly": True})
    with pytest.raises(ccxt.ExchangeError, match="-4164"):  # notional 1 < 5
        ex.create_order(SYMBOL, "market", "buy", 0.01, None, {"clientOrderId": "r-3"})
    with pytest.raises(ccxt.BadRequest, match="-4015"):  # not Binance's client id pattern
        ex.create_order(SYMBOL, "market", "buy", 1.0, None, {"clientOrderId": "bad id!"})
    with pytest.raises(ccxt.OrderNotFound):  # -2013
        ex.fetch_order(None, SYMBOL, {"clientOrderId": "never-sent"})
    with pytest.raises(ccxt.MarginModeAlreadySet):  # -4046, as ccxt maps it
        ex.set_margin_mode("isolated", SYMBOL)
    assert server.account.orders == [] and server.account.cash == 1000.0
    codes = [r.params.get("newClientOrderId") for r in server.requests
             if r.method == "POST" and r.path == "/fapi/v1/order"]
    assert codes[:3] == ["r-1", "r-2", "r-3"]
    # a client id is unique among OPEN orders only: a filled order's id can be used again
    ex.create_order(SYMBOL, "market", "buy", 1.0, None, {"clientOrderId": "again"})
    ex.create_order(SYMBOL, "market", "sell", 1.0, None, {"clientOrderId": "again"})
    assert server.account.duplicate_client_ids() == {"again": 2}
