"""Child-process targets of the crash-safety tests (a module with a stable import name, so
the forkserver can unpickle them)."""

from __future__ import annotations

import io
import os

from quantlib.live.brokers import PaperBroker
from quantlib.live.feed_factory import make_feed
from quantlib.live.logs import JsonLogger
from quantlib.live.replay_feeds import ReplayFeed
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


def run_paper_at(broker_class, spec_json: str, feed: str, state: str) -> None:
    """A paper run with ``broker_class(store, spec)`` over ``make_feed(feed)``; exits the
    process (the body of the paper children that read a feed string)."""
    from quantlib.strategy.spec import load_spec

    spec = load_spec(spec_json)
    store = StateStore(state)
    LiveRunner(spec, broker_class(store, spec), store, make_feed(feed),
               logger=JsonLogger(io.StringIO())).run()
    os._exit(0)


def _run_live_at(url: str, spec_json: str, state: str, feed) -> None:
    """A live run with CcxtBroker against the loopback server at ``url``; exits the process."""
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
    LiveRunner(spec, broker, store, feed, mode="live", logger=log).run()
    os._exit(0)


def _ccxt_child(url: str, spec_json: str, replay: str, state: str) -> None:
    _run_live_at(url, spec_json, state, ReplayFeed(replay))


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


# -- a grid bot at the loopback exchange, killed with SIGKILL -----------------------------------

def _walking_server_process(conn, rows: list) -> None:
    """A loopback Kraken whose market walks bar i's intrabar path when a runner first asks for
    bar i (``GET /0/public/TestWalk?i=N``, idempotent): the market moves once per bar however
    often runners die and restart."""
    from tests.support.kraken_server import KrakenServer

    class WalkingKraken(KrakenServer):
        walked = 0

        def _public_TestWalk(self, params: dict) -> dict:  # test control, not Kraken's API
            i = int(params["i"])
            while self.walked <= i:
                o, h, lo, c = rows[self.walked]
                for price in ((o, lo, h, c) if c >= o else (o, h, lo, c)):
                    self.set_price("BTC/USD", price)
                self.walked += 1
            return {"walked": self.walked}

    with WalkingKraken(symbol="BTC/USD") as server:
        server.set_balance("USD", 10_000.0)
        server.set_price("BTC/USD", 100.0)
        conn.send(server.url)
        conn.recv()  # "report"
        orders = sorted((o["cl_ord_id"], o["descr"]["type"], o["descr"]["ordertype"],
                         o["descr"]["price"], o["vol"], o["status"])
                        for o in server.orders.values())
        conn.send((orders, server.balance("USD"), server.balance("BTC"),
                   server.duplicate_client_ids(), list(server.errors)))
    os._exit(0)


def _walking_feed(url: str, rows: list):
    import json
    import urllib.request

    import pandas as pd

    from quantlib.live.feeds import Bar

    start = pd.Timestamp("2024-01-01", tz="UTC")
    for i, (o, h, lo, c) in enumerate(rows):
        with urllib.request.urlopen(f"{url}/0/public/TestWalk?i={i}", timeout=60) as answer:
            json.loads(answer.read())
        yield Bar(int((start + pd.Timedelta(hours=i)).value // 1_000_000), o, h, lo, c, 1.0)


def _grid_child(url: str, spec_json: str, rows: list, state: str) -> None:
    _run_live_at(url, spec_json, state, _walking_feed(url, rows))
