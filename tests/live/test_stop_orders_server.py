"""The loopback Kraken's stop-loss and take-profit orders, through a real ``ccxt.kraken``:
ccxt's own request (``stopLossPrice`` / ``takeProfitPrice`` -> ``ordertype``) and parsing, and
:meth:`KrakenServer.walk_bar` filling them against a bar's range on hand-built bars whose
answers are written down."""

from __future__ import annotations

import pytest

from tests.support.kraken_server import KrakenServer, make_ccxt_kraken


@pytest.fixture
def venue():
    with KrakenServer(symbol="BTC/USD") as server:
        server.set_balance("BTC", 1.0)
        server.set_price("BTC/USD", 100.0)
        yield server, make_ccxt_kraken(server, timeout=2000)
        assert server.errors == []


def _exits(exchange, sl: float | None, tp: float | None) -> dict[str, str]:
    ids = {}
    for name, trigger in (("stopLossPrice", sl), ("takeProfitPrice", tp)):
        if trigger is not None:
            order = exchange.create_order("BTC/USD", "market", "sell", 1.0, None,
                                          {name: trigger, "clientOrderId": f"id-{name}"})
            ids[name] = order["id"]
    return ids


def test_ccxt_sends_and_parses_both_order_types(venue):
    server, exchange = venue
    ids = _exits(exchange, 95.0, 110.0)
    kinds = sorted(o["descr"]["ordertype"] for o in server.orders.values())
    assert kinds == ["stop-loss", "take-profit"]
    parsed = {o["id"]: o for o in exchange.fetch_open_orders("BTC/USD")}
    stop, take = parsed[ids["stopLossPrice"]], parsed[ids["takeProfitPrice"]]
    assert (stop["stopLossPrice"], stop["takeProfitPrice"]) == (95.0, None)
    assert (take["takeProfitPrice"], take["stopLossPrice"]) == (110.0, None)
    assert stop["status"] == take["status"] == "open" and stop["side"] == "sell"
    assert server.balance("BTC") == 1.0  # resting, nothing sold, nothing held


@pytest.mark.parametrize("bar, filled, price", [
    ((99.0, 101.0, 94.0, 96.0), "stopLossPrice", 95.0),     # stop-loss inside the range
    ((93.0, 94.0, 90.0, 92.0), "stopLossPrice", 93.0),      # opens below it: at the open
    ((101.0, 111.0, 100.0, 109.0), "takeProfitPrice", 110.0),  # take-profit inside
    ((112.0, 115.0, 111.0, 113.0), "takeProfitPrice", 112.0),  # opens above it
    ((100.0, 111.0, 94.0, 100.0), "stopLossPrice", 95.0),   # both reached: stop-loss first
])
def test_walk_bar_fills_one_exit_and_the_other_finds_nothing_to_sell(venue, bar, filled, price):
    server, exchange = venue
    ids = _exits(exchange, 95.0, 110.0)
    closed = server.walk_bar("BTC/USD", *bar)
    (order,) = [o for o in exchange.fetch_closed_orders("BTC/USD") if o["id"] == ids[filled]]
    assert closed == [ids[filled]]
    assert order["status"] == "closed" and order["average"] == price and order["filled"] == 1.0
    assert server.balance("BTC") == 0.0 and server.balance("USD") == pytest.approx(price)
    other = next(k for k in ids if k != filled)
    status = {o["id"]: o["status"] for fetch in (exchange.fetch_open_orders,
                                                  exchange.fetch_closed_orders)
              for o in fetch("BTC/USD")}
    # the sibling stays open unless the bar reached it too (then: nothing left to sell)
    assert status[ids[other]] == ("canceled" if bar == (100.0, 111.0, 94.0, 100.0) else "open")


def test_walk_bar_leaves_triggers_outside_the_range(venue):
    server, exchange = venue
    ids = _exits(exchange, 95.0, 110.0)
    assert server.walk_bar("BTC/USD", 100.0, 109.9, 95.1, 105.0) == []
    assert {o["id"] for o in exchange.fetch_open_orders("BTC/USD")} == set(ids.values())
