"""The perp live tests' shared pieces and child-process targets (a module with a stable import
name): replay data, the spec, a feed that moves the loopback venue one bar at a time, live and
paper runs, and the venue's process for the SIGKILL tests."""

from __future__ import annotations

import io
import json
import os
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

from quantlib.live.feeds import Feed, PerpBar
from quantlib.live.logs import JsonLogger
from quantlib.live.replay_feeds import PerpReplayFeed
from quantlib.live.runner import LiveRunner
from quantlib.live.state import StateStore

SYMBOL = "BTC/USDT:USDT"
FEE, MMR, LIQ_FEE, LEVERAGE = 0.0004, 0.004, 0.0125, 3
STEP = "0.00000001"  # the venue's lot step: fine, so sizes agree with the rule to ~1e-8 units


def perp_data(n_bars: int, seed: int) -> tuple[Any, Any, Any]:
    """``(candles, mark, funding)`` of ``n_bars + 1`` hourly bars: the venue replays all, the
    feed releases the first ``n_bars`` (the last decision fills at the extra bar's open)."""
    from quantlib.data import synthetic_funding, synthetic_mark, synthetic_ohlcv

    candles = synthetic_ohlcv(n_bars=n_bars + 1, seed=seed).ohlcv
    candles.attrs["symbol"] = SYMBOL
    mark = synthetic_mark(candles, seed=seed + 1)
    funding = synthetic_funding(candles, seed=seed + 2)
    funding["funding_rate"] *= 20.0  # large enough that funding moves the account visibly
    return candles, mark, funding


def perp_spec(**overrides: Any):
    """A perp spec that goes long and short (MA cross, direction both) at 3x."""
    from tests.live.conftest import make_spec

    fields: dict[str, Any] = dict(
        exchange="binanceusdm", symbols=[SYMBOL], market="perp",
        perp={"leverage": LEVERAGE, "maint_margin_rate": MMR, "liquidation_fee": LIQ_FEE},
        execution={"fees": FEE, "slippage_bps": 0.0, "direction": "both"},
        risk={"order_size": 0.5}, approval={"status": "approved", "by": "test"})
    fields.update(overrides)
    return make_spec("ma_cross", {"fast": 3, "slow": 10}, **fields)


class AdvancingFeed(Feed):
    """A :class:`PerpReplayFeed` that moves the venue to bar ``i + 1``'s open before releasing
    bar ``i`` (closed): what the venue's clock has done when a closed bar reaches a trader."""

    def __init__(self, feed: PerpReplayFeed, advance: Callable[[int], Any]):
        self.feed, self.advance = feed, advance
        self.name, self.symbol, self.timeframe = feed.name, feed.symbol, feed.timeframe
        self.times = feed.times

    def __len__(self) -> int:
        return len(self.feed)

    def __iter__(self) -> Iterator[PerpBar]:
        for i, bar in enumerate(self.feed):
            self.advance(i + 1)
            yield bar


def http_advance(url: str) -> Callable[[int], Any]:
    def advance(index: int) -> Any:
        with urllib.request.urlopen(f"{url}/test/advance?i={index}", timeout=60) as answer:
            return json.loads(answer.read())
    return advance


def replay_feed(candles, mark, funding, n_bars: int) -> PerpReplayFeed:
    times = funding.index.as_unit("ms").asi8
    return PerpReplayFeed(candles.iloc[:n_bars], mark.iloc[:n_bars],
                          (times, funding["funding_rate"].to_numpy()))


def make_exchange_for(url: str, **config: Any):
    """A real ``ccxt.binanceusdm`` aimed at a loopback venue at ``url``."""
    import ccxt

    from quantlib.core.endpoints import point_at_loopback
    from tests.support.binanceusdm_server import DEFAULT_API_KEY, DEFAULT_SECRET

    options = {"apiKey": DEFAULT_API_KEY, "secret": DEFAULT_SECRET, "enableRateLimit": True,
               "rateLimit": 1, "timeout": 2000}
    options.update(config)
    return point_at_loopback(ccxt.binanceusdm(options), url, "test server")


def run_live(spec, exchange, state: str, feed, *, backoff: float = 0.01) -> StateStore:
    from quantlib.live.brokers.perp_ccxt import PerpCcxtBroker

    store = StateStore(state, durable=True)
    log = JsonLogger(io.StringIO())
    broker = PerpCcxtBroker(store, spec, exchange, logger=log, backoff=backoff)
    LiveRunner(spec, broker, store, feed, mode="live", logger=log).run()
    return store


def run_paper(spec, state: str, feed) -> StateStore:
    from quantlib.live.brokers.perp_paper import PaperPerpBroker

    store = StateStore(state)
    LiveRunner(spec, PaperPerpBroker(store, spec), store, feed,
               logger=JsonLogger(io.StringIO())).run()
    return store


def start_venue(server, candles, mark, funding, cash: float = 10_000.0) -> None:
    """Give a loopback venue the replay and the cash, at bar 0's open."""
    server.set_replay(candles, mark, funding, symbol=SYMBOL, step=STEP, min_notional="5")
    server.balances["USDT"] = cash
    server.advance(0)


def venue_report(server) -> dict[str, Any]:
    """What the venue holds: orders (client id, side, qty, status, reduce-only), cash,
    position, funding income, duplicate client ids, handler errors."""
    from tests.support.binanceusdm_private import order_book_view

    acct = server.account
    pos = acct.position("BTCUSDT")
    return {"orders": order_book_view(acct.orders), "cash": acct.cash,
            "position": (pos.qty, pos.entry, pos.margin),
            "funding": [(r["time"], r["income"]) for r in acct.income
                        if r["incomeType"] == "FUNDING_FEE"],
            "duplicates": acct.duplicate_client_ids(), "errors": [repr(e) for e in server.errors],
            "margin_calls": [(r.path, r.params.get("leverage") or r.params.get("marginType"))
                             for r in server.requests
                             if r.path in ("/fapi/v1/leverage", "/fapi/v1/marginType")]}


# -- child processes of the SIGKILL test ---------------------------------------------------------

def venue_process(conn, n_bars: int, seed: int) -> None:
    """The loopback venue in its own process (forking runners from a process hosting server
    threads could copy a held lock into them); sends its URL, then its report on request."""
    from tests.support.binanceusdm_server import BinanceUsdmServer

    candles, mark, funding = perp_data(n_bars, seed)
    with BinanceUsdmServer(fee_rate=FEE, mmr=MMR, liq_fee=LIQ_FEE) as server:
        start_venue(server, candles, mark, funding)
        conn.send(server.url)
        conn.recv()  # "report"
        with server._lock:
            conn.send(venue_report(server))
    os._exit(0)


def live_child(url: str, spec_json: str, n_bars: int, seed: int, state: str) -> None:
    from quantlib.strategy.spec import load_spec

    candles, mark, funding = perp_data(n_bars, seed)
    feed = AdvancingFeed(replay_feed(candles, mark, funding, n_bars), http_advance(url))
    run_live(load_spec(spec_json), make_exchange_for(url), state, feed)
    os._exit(0)
