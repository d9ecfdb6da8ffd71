"""A 3-symbol spec trading on the loopback Kraken through 429s, 503s, garbled and lost answers
ends with the orders (each once) and balances of a run without faults."""

from __future__ import annotations

import io

import pytest

from quantlib.data import synthetic_ohlcv
from quantlib.live.brokers.ccxt_broker import CcxtBroker
from quantlib.live.logs import JsonLogger
from quantlib.live.replay_feeds import PortfolioReplayFeed
from quantlib.live.runner import LiveRunner
from quantlib.live.state import StateStore
from tests.live.conftest import make_spec
from tests.support.kraken_server import KrakenServer, make_ccxt_kraken

SYMBOLS = ["BTC/USD", "ETH/USD", "SOL/USD"]
N_BARS = 200


def _run(frames, tmp_path, label, faults):
    spec = make_spec("ma_cross", {"fast": 3, "slow": 10}, symbols=SYMBOLS, exchange="kraken",
                     approval={"status": "approved", "by": "t"},
                     execution={"fees": 0.0, "stop_on_exchange": True},
                     risk={"order_size": 0.3, "sl_stop": 0.02})
    with KrakenServer(symbol=SYMBOLS[0]) as server:
        for symbol in SYMBOLS[1:]:
            server.add_pair(symbol)
        for symbol, frame in frames.items():
            server.set_price(symbol, float(frame["close"].iloc[-1]))
        server.set_balance("USD", 10_000.0)
        server.fault_delay = 0.05  # a lost answer: the connection closes after this
        for endpoint, kind, status, after in faults:
            server.inject_fault(endpoint, kind, status=status, after=after)
        store = StateStore(tmp_path / f"{label}.db")
        log = JsonLogger(io.StringIO())
        broker = CcxtBroker(store, spec, make_ccxt_kraken(server, timeout=2000), logger=log,
                            backoff=0.01)
        LiveRunner(spec, broker, store, PortfolioReplayFeed(frames), mode="live",
                   logger=log).run()
        orders = sorted((o["cl_ord_id"], o["_symbol"], o["descr"]["type"], o["vol"],
                         o["status"]) for o in server.orders.values())
        balances = {c: server.balance(c) for c in ("USD", "BTC", "ETH", "SOL")}
        assert server.errors == []
        left = {e: server.pending_faults(e) for e in ("AddOrder", "OpenOrders", "ClosedOrders")}
        return orders, balances, server.duplicate_client_ids(), left, store


def test_three_symbol_spec_through_exchange_faults(tmp_path):
    frames = {s: synthetic_ohlcv(n_bars=N_BARS, seed=k).ohlcv for k, s in enumerate(SYMBOLS, 31)}
    clean = _run(frames, tmp_path, "clean", [])
    faults = [("AddOrder", "http", 429, 2), ("AddOrder", "http", 503, 5),
              ("AddOrder", "lost", None, 7), ("AddOrder", "malformed", None, 4),
              ("OpenOrders", "http", 500, 30), ("ClosedOrders", "malformed", None, 40),
              ("AddOrder", "lost", None, 3)]
    faulty = _run(frames, tmp_path, "faulty", faults)
    orders, balances, duplicates, left, store = faulty
    assert left == {"AddOrder": 0, "OpenOrders": 0, "ClosedOrders": 0}, "every fault must hit"
    assert clean[2] == {} and duplicates == {}
    assert {o[1] for o in clean[0]} == set(SYMBOLS) and len(clean[0]) >= 12
    assert orders == clean[0]  # the same orders, by client id and market, each once
    assert balances == pytest.approx(clean[1], abs=1e-9)
    assert [(o.client_id, o.status) for o in store.orders()] == [
        (o.client_id, o.status) for o in clean[4].orders()]
