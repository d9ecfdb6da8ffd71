"""The loopback Binance USD-M server answers as Binance documents, as seen through real ccxt."""

from __future__ import annotations

import ccxt
import pandas as pd
import pytest

from quantlib.data.synthetic import synthetic_funding, synthetic_mark, synthetic_ohlcv
from tests.support.binanceusdm_server import (  # noqa: F401  (the binanceusdm_server fixture)
    binanceusdm_server_fixture,
    make_ccxt_binanceusdm,
)

SYMBOL = "BTC/USDT:USDT"


@pytest.fixture
def venue(binanceusdm_server):
    bars = synthetic_ohlcv(2000, "1h", seed=9).ohlcv
    binanceusdm_server.set_klines(bars, symbol=SYMBOL)
    binanceusdm_server.set_klines(synthetic_mark(bars, seed=9), symbol=SYMBOL, price="mark")
    binanceusdm_server.set_funding(synthetic_funding(bars, seed=9), symbol=SYMBOL)
    binanceusdm_server.now_ms = int(bars.index[-1].value // 1_000_000) + 60_000
    return binanceusdm_server, bars, make_ccxt_binanceusdm(binanceusdm_server)


def _ms(stamp: pd.Timestamp) -> int:
    return int(stamp.value // 1_000_000)


def test_markets_parse_as_a_linear_perpetual(venue):
    _, _, exchange = venue
    market = exchange.load_markets()[SYMBOL]
    assert (market["id"], market["swap"], market["linear"], market["settle"]) == \
        ("BTCUSDT", True, True, "USDT")
    assert market["precision"]["amount"] == 0.001 and market["limits"]["cost"]["min"] == 100


def test_klines_limits_and_inclusive_bounds(venue):
    server, bars, exchange = venue
    api = exchange.fapiPublicGetKlines
    # No bounds: the most recent 500 (Binance's default), the forming candle last.
    rows = api({"symbol": "BTCUSDT", "interval": "1h"})
    assert len(rows) == 500 and rows[-1][0] == _ms(bars.index[-1])
    # startTime and endTime both inclusive (open times).
    rows = api({"symbol": "BTCUSDT", "interval": "1h", "startTime": _ms(bars.index[10]),
                "endTime": _ms(bars.index[12])})
    assert [r[0] for r in rows] == [_ms(t) for t in bars.index[10:13]]
    # Only endTime: the `limit` candles ending there.
    rows = api({"symbol": "BTCUSDT", "interval": "1h", "endTime": _ms(bars.index[99]),
                "limit": 3})
    assert [r[0] for r in rows] == [_ms(t) for t in bars.index[97:100]]
    assert len(api({"symbol": "BTCUSDT", "interval": "1h", "limit": 1500,
                    "startTime": _ms(bars.index[0])})) == 1500
    with pytest.raises(ccxt.BadRequest, match="-1130"):
        api({"symbol": "BTCUSDT", "interval": "1h", "limit": 1501})
    with pytest.raises(ccxt.BadSymbol):
        exchange.fapiPublicGetKlines({"symbol": "NOPEUSDT", "interval": "1h"})
    # Mark candles carry no volume.
    mark = exchange.fetch_ohlcv(SYMBOL, "1h", since=_ms(bars.index[0]), limit=5,
                                params={"price": "mark"})
    assert [row[5] for row in mark] == [0.0] * 5
    assert server.requests_for("/fapi/v1/markPriceKlines")[0].params["startTime"] == \
        str(_ms(bars.index[0]))


def test_funding_limits_and_defaults(venue):
    server, bars, exchange = venue
    api = exchange.fapiPublicGetFundingRate
    assert len(api({"symbol": "BTCUSDT"})) == 100  # default limit: the most recent 100
    start = _ms(bars.index[0])
    page = api({"symbol": "BTCUSDT", "startTime": start, "limit": 1000})
    assert len(page) == 250 and page[0]["fundingTime"] == start  # 2000 h / 8 h payments
    assert set(page[0]) == {"symbol", "fundingRate", "fundingTime", "markPrice"}
    assert len(page[0]["fundingRate"].split(".")[1]) == 8
    with pytest.raises(ccxt.BadRequest, match="-1130"):
        api({"symbol": "BTCUSDT", "limit": 1001})
    # ccxt's unified view of the same records.
    history = exchange.fetch_funding_rate_history(SYMBOL, since=start, limit=3)
    assert [h["fundingRate"] for h in history] == [float(p["fundingRate"]) for p in page[:3]]


def test_premium_index_gives_the_last_payment_and_the_next_time(venue):
    server, bars, exchange = venue
    rate = exchange.fetch_funding_rate(SYMBOL)
    funding = synthetic_funding(bars, seed=9)
    assert rate["fundingRate"] == float(f"{funding['funding_rate'].iloc[-1]:.8f}")
    # The clock is 1 minute into the last hourly bar; the next 8-hour boundary after it.
    now = pd.Timestamp(server.now_ms, unit="ms", tz="UTC")
    assert rate["fundingTimestamp"] == _ms(now.ceil("8h"))
    assert rate["markPrice"] == pytest.approx(synthetic_mark(bars, seed=9)["close"].iloc[-1])


def test_signed_routes_check_key_and_signature(venue):
    server, _, exchange = venue
    server.balances["USDT"] = 2500.0
    assert exchange.fetch_balance()["USDT"]["total"] == 2500.0
    signed = [r for r in server.requests if r.path == "/fapi/v3/account"]
    assert signed and "signature" in signed[0].params and "timestamp" in signed[0].params
    wrong = make_ccxt_binanceusdm(server, secret="0" * 64)
    wrong.markets, wrong.markets_by_id = exchange.markets, exchange.markets_by_id
    with pytest.raises(ccxt.AuthenticationError):
        wrong.fetch_balance()
    stranger = make_ccxt_binanceusdm(server, api_key="someone-else")
    stranger.markets, stranger.markets_by_id = exchange.markets, exchange.markets_by_id
    with pytest.raises(ccxt.AuthenticationError):
        stranger.fetch_balance()
