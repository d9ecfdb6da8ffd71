"""Child-process targets of the 3-symbol crash-safety tests (test_portfolio_crash.py)."""

from __future__ import annotations

import os

from quantlib.live.brokers import PaperBroker
from quantlib.live.feed_factory import make_feed
from tests.live._crash_children import _run_live_at, run_paper_at

SYMBOLS = ("BTC/USD", "ETH/USD", "SOL/USD")


def paper_portfolio_child(spec_json: str, feed: str, state: str) -> None:
    run_paper_at(PaperBroker, spec_json, feed, state)


def ccxt_portfolio_child(url: str, spec_json: str, feed: str, state: str) -> None:
    _run_live_at(url, spec_json, state, make_feed(feed))


def portfolio_server_process(conn, closes: dict) -> None:
    """A loopback Kraken listing the three markets, each priced at ``closes[symbol]``."""
    from tests.support.kraken_server import KrakenServer

    with KrakenServer(symbol=SYMBOLS[0]) as server:
        for symbol in SYMBOLS[1:]:
            server.add_pair(symbol)
        for symbol, price in closes.items():
            server.set_price(symbol, price)
        server.set_balance("USD", 10_000.0)
        conn.send(server.url)
        conn.recv()  # "report"
        orders = [(o["cl_ord_id"], o["_symbol"], o["descr"]["type"], o["vol"], o["status"])
                  for _, o in sorted(server.orders.items(), key=lambda kv: kv[1]["opentm"])]
        balances = {code: server.balance(code) for code in ("USD", "BTC", "ETH", "SOL")}
        conn.send((orders, balances, server.duplicate_client_ids(), list(server.errors)))
    os._exit(0)
