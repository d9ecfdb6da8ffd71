"""Child-process targets of the crash-safety tests (a module with a stable import name, so
the forkserver can unpickle them)."""

from __future__ import annotations

import io
import os

from quantlib.live.brokers import PaperBroker
from quantlib.live.feeds import ReplayFeed
from quantlib.live.logs import JsonLogger
from quantlib.live.runner import LiveRunner
from quantlib.live.state import StateStore


def _paper_child(spec_json: str, replay: str, state: str) -> None:
    from quantlib.strategy.spec import load_spec

    spec = load_spec(spec_json)
    store = StateStore(state)
    runner = LiveRunner(spec, PaperBroker(store, spec), store, ReplayFeed(replay),
                        logger=JsonLogger(io.StringIO()))
    runner.run()
    os._exit(0)


def _ccxt_child(url: str, spec_json: str, replay: str, state: str) -> None:
    import ccxt

    from quantlib.live.brokers.ccxt_broker import CcxtBroker
    from quantlib.strategy.spec import load_spec
    from tests.support.kraken_server import DEFAULT_API_KEY, DEFAULT_SECRET

    spec = load_spec(spec_json)
    exchange = ccxt.kraken({"apiKey": DEFAULT_API_KEY, "secret": DEFAULT_SECRET,
                            "enableRateLimit": True, "rateLimit": 1, "timeout": 2000})
    exchange.urls["api"] = dict(exchange.urls["api"], public=url, private=url)
    store = StateStore(state, durable=True)
    log = JsonLogger(io.StringIO())
    broker = CcxtBroker(store, spec, exchange, logger=log, backoff=0.01)
    LiveRunner(spec, broker, store, ReplayFeed(replay), mode="live", logger=log).run()
    os._exit(0)


def _server_process(conn, replay: str) -> None:
    # The loopback exchange runs in its own process: forking runner children from a process that
    # hosts server threads could copy a held lock into the child and deadlock it.
    from quantlib.data import load_ohlcv
    from tests.support.kraken_server import KrakenServer

    data = load_ohlcv(replay)
    with KrakenServer(data, symbol="BTC/USD") as server:
        server.set_balance("USD", 10_000.0)
        server.set_price("BTC/USD", float(data["close"].iloc[-1]))
        conn.send(server.url)
        conn.recv()  # "report"
        orders = [(o["cl_ord_id"], o["descr"]["type"], o["vol"], o["status"])
                  for _, o in sorted(server.orders.items(), key=lambda kv: kv[1]["opentm"])]
        conn.send((orders, server.balance("USD"), server.balance("BTC"),
                   server.duplicate_client_ids(), len(server.requests_for("AddOrder"))))
    os._exit(0)
