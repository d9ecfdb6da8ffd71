"""Child-process targets of the exit SIGKILL test (test_exits_sigkill.py): a loopback Kraken
whose market walks bars behind a gate the test moves, and a live runner fed by it."""

from __future__ import annotations

import os


def gated_exchange_process(conn, rows: list) -> None:
    """A loopback Kraken (1e-8 price tick) walking ``rows`` ``(time ms, o, h, l, c, v)``.

    Test controls (not Kraken's API): ``TestWalk?i=N`` walks every bar up to N once
    (:meth:`KrakenServer.walk_bar`), or answers ``wait`` while N is beyond the gate;
    ``TestGate?n=N`` moves the gate; ``TestOrders`` lists the orders. The bar an order filled in
    is noted: a resting exit during its bar's walk; a market order sent at a bar's close
    belongs to the next bar (the backtest's fill at its open)."""
    from tests.live.test_exits_take_profit import FineTickKraken

    class GatedKraken(FineTickKraken):
        walked, gate = 0, -1
        fill_bar: dict[str, int] = {}

        def _public_TestWalk(self, params: dict) -> dict:
            i = int(params["i"])
            if i > self.gate:
                return {"walked": self.walked, "wait": True}
            while self.walked <= i:
                self.note_closed(self.fill_bar, self.walked)
                _, o, h, lo, c, _ = rows[self.walked]
                for txid in self.walk_bar("BTC/USD", o, h, lo, c):
                    self.fill_bar.setdefault(txid, self.walked)
                self.walked += 1
            return {"walked": self.walked, "wait": False}

        def _public_TestGate(self, params: dict) -> dict:
            self.gate = int(params["n"])
            return {"gate": self.gate}

        def _public_TestOrders(self, params: dict) -> dict:
            return {o["cl_ord_id"]: [o["descr"]["ordertype"], o["status"]]
                    for o in self.orders.values()}

    with GatedKraken(symbol="BTC/USD") as server:
        server.set_balance("USD", 10_000.0)
        server.set_price("BTC/USD", rows[0][1])
        conn.send(server.url)
        conn.recv()  # "report"
        server.note_closed(server.fill_bar, len(rows))
        orders = sorted((server.fill_bar.get(txid, -1), o["cl_ord_id"], o["descr"]["type"],
                         o["descr"]["ordertype"], float(o["price"]), float(o["vol_exec"]),
                         o["status"]) for txid, o in server.orders.items())
        conn.send((orders, server.balance("USD"), server.balance("BTC"),
                   server.duplicate_client_ids(), list(server.errors)))
    os._exit(0)


def exchange_control(url: str, name: str, **params) -> dict:
    """One call of a test control endpoint of the gated exchange."""
    import json
    import urllib.parse
    import urllib.request

    query = urllib.parse.urlencode(params)
    with urllib.request.urlopen(f"{url}/0/public/{name}?{query}", timeout=60) as answer:
        return json.loads(answer.read())["result"]


def _gated_feed(url: str, rows: list):
    from quantlib.live.feeds import Bar
    from tests.support.ready import wait_until

    for i, (t, o, h, lo, c, v) in enumerate(rows):
        wait_until(lambda i=i: not exchange_control(url, "TestWalk", i=i)["wait"], 600,
                   describe=f"the gate to pass bar {i}")
        yield Bar(t, o, h, lo, c, v)


def gated_runner_child(url: str, spec_json: str, rows: list, state: str) -> None:
    from tests.live._crash_children import _run_live_at

    _run_live_at(url, spec_json, state, _gated_feed(url, rows))
