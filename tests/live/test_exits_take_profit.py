"""Live exits on the loopback Kraken fill where the backtest fills them.

A spec with a stop-loss and a take-profit trades live against the loopback Kraken, whose price
replays each bar (:meth:`KrakenServer.walk_bar`: a trigger the bar opens beyond fills at the
open, a trigger inside the bar's range at the trigger). The independent computation is
:func:`quantlib.backtest.run_backtest` (vectorbt) on the same bars: every fill must agree in
bar, side and price (to the 1e-8 price tick of the test market), amounts to the 1e-8 lot.

The bars where a signal exit is due at the open and the bar later reaches a stop-loss or
take-profit level are part of that comparison: the backtest's rule lets the exit at the open
come first (``quantlib/core/stop_rule.py``), as live does when it sells at the open
and cancels its resting exits; :func:`open_first_exits` finds them so that the tests can
require some.
"""

from __future__ import annotations

import io

import pandas as pd
import pytest

from quantlib.backtest.engine import run_backtest
from quantlib.core.config import BacktestConfig
from quantlib.data import synthetic_ohlcv
from quantlib.live.brokers.ccxt_broker import CcxtBroker
from quantlib.live.feeds import Bar
from quantlib.live.logs import JsonLogger
from quantlib.live.runner import LiveRunner
from quantlib.live.state import StateStore
from tests.live.conftest import make_spec
from tests.support.kraken_server import KrakenServer, make_ccxt_kraken

SL, TP = 0.02, 0.03
PARAMS = {"fast": 3, "slow": 10}
TICK = LOT = 1e-8


class FineTickKraken(KrakenServer):
    """The loopback Kraken with a 1e-8 price tick: triggers reach it unrounded to 1e-8."""

    def _public_AssetPairs(self, params: dict) -> dict:
        pairs = super()._public_AssetPairs(params)
        for pair in pairs.values():
            pair.update(pair_decimals=8, tick_size="0.00000001")
        return pairs


def exits_spec(params: dict = PARAMS, symbol: str = "BTC/USD"):
    return make_spec("ma_cross", params, symbols=[symbol], exchange="kraken",
                     approval={"status": "approved", "by": "test"},
                     execution={"fees": 0.0, "slippage_bps": 0.0, "stop_on_exchange": True},
                     risk={"sl_stop": SL, "tp_stop": TP})


def backtest_fills(frame: pd.DataFrame, params: dict = PARAMS) -> list[tuple[int, int, float,
                                                                          float]]:
    """(bar time ms, side, price, size) of the backtest's fills."""
    res = run_backtest("ma_cross", frame, params,
                       BacktestConfig(fees=0.0, slippage_bps=0.0, sl_stop=SL, tp_stop=TP))
    f = res.fills
    times = pd.DatetimeIndex(f["time"]).as_unit("ms").asi8
    return [(int(t), int(s), float(p), float(z)) for t, s, p, z in
            zip(times, f["side"], f["price"], f["size"], strict=True)]


class WalkedReplay:
    """Closed bars for the runner; before bar i is handed over the exchange walks it. A
    resting exit the walk of bar i fills is a fill of bar i; a market order sent at bar i's
    close fills at that close, the backtest's open of bar i+1."""

    def __init__(self, server: KrakenServer, frame: pd.DataFrame, symbol: str = "BTC/USD",
                 *, next_open: bool = False):
        # next_open: after bar i's walk the price is bar i+1's open (the first trade after the
        # close, where a market order sent at the close fills), for data whose opens are not
        # the previous closes
        self.server, self.frame, self.symbol, self.next_open = server, frame, symbol, next_open
        self.fill_bar: dict[str, int] = {}
        self.times = frame.index.as_unit("ms").asi8

    def __iter__(self):
        rows = self.frame[["open", "high", "low", "close", "volume"]].itertuples(name=None)
        for i, (_, o, h, lo, c, v) in enumerate(rows):
            # market orders of bar i-1's close: the backtest's open of bar i
            self.server.note_closed(self.fill_bar, i)
            for txid in self.server.walk_bar(self.symbol, o, h, lo, c):
                self.fill_bar.setdefault(txid, i)
            if self.next_open and i + 1 < len(self.frame):
                self.server.set_price(self.symbol, float(self.frame["open"].iloc[i + 1]))
            yield Bar(int(self.times[i]), o, h, lo, c, v)

    def fills(self) -> list[tuple[int, int, float, float]]:
        self.server.note_closed(self.fill_bar, len(self.frame))
        out = []
        for txid, bar in self.fill_bar.items():
            order = self.server.orders[txid]
            side = 1 if order["descr"]["type"] == "buy" else -1
            out.append((int(self.times[bar]) if bar < len(self.times) else -1, side,
                        float(order["price"]), float(order["vol_exec"])))
        return sorted(out)


def open_first_exits(frame: pd.DataFrame, backtest: list[tuple],
                     params: dict = PARAMS) -> list[int]:
    """Bar times where the backtest sells at the open on a signal exit (the target went flat
    at the previous close) although the bar later reaches the position's stop-loss or
    take-profit level: the bars where the rule "a signal exit due at the open comes first"
    decides the fill (see quantlib/core/stop_rule.py)."""
    from quantlib.core.bars import Bars
    from quantlib.core.registry import get_kind

    target = get_kind("ma_cross").signals(Bars.from_frame(frame), params)
    times = list(frame.index.as_unit("ms").asi8)
    out, entry = [], None
    for t, side, price, _ in sorted(backtest):
        if side > 0:
            entry = price
            continue
        i = times.index(t)
        bar = frame.iloc[i]
        reached = bar["low"] <= entry * (1 - SL) or bar["high"] >= entry * (1 + TP)
        if i >= 2 and target[i - 1] <= 0 < target[i - 2] and price == bar["open"] and reached:
            out.append(t)
    return out


def assert_same_fills(exchange: list[tuple], backtest: list[tuple]) -> None:
    """Bar and side exactly, price to the tick, amounts truncated to the lot (cash / price
    rounded down to 1e-8 BTC), and each exit sells what its entry bought."""
    assert len(exchange) == len(backtest), (exchange, backtest)
    bought = None
    for got, want in zip(exchange, sorted(backtest), strict=True):
        assert got[:2] == want[:2], (got, want)
        assert got[2] == pytest.approx(want[2], abs=TICK), (got, want)
        assert got[3] == pytest.approx(want[3], abs=2 * LOT), (got, want)
        if got[1] > 0:
            bought = got[3]
        else:
            assert got[3] == bought, (got, want)


def exit_kinds(server: KrakenServer) -> dict[str, list[str]]:
    """Statuses of the resting exits at the exchange, by Kraken order type."""
    out: dict[str, list[str]] = {"stop-loss": [], "take-profit": []}
    for order in server.orders.values():
        if order["descr"]["ordertype"] in out:
            out[order["descr"]["ordertype"]].append(order["status"])
    return out


def _live_fills(frame: pd.DataFrame, spec, tmp_path, *, next_open: bool = False):
    """Trade ``spec`` live over ``frame`` on the walked loopback Kraken: (fills as the
    exchange made them, exits by Kraken order type and status, the state store)."""
    symbol = spec.symbol
    with FineTickKraken(symbol=symbol) as server:
        server.set_balance(symbol.split("/")[1], spec.risk.init_cash)
        server.set_price(symbol, float(frame["open"].iloc[0]))
        feed = WalkedReplay(server, frame, symbol, next_open=next_open)
        store = StateStore(tmp_path / "live.db")
        log = JsonLogger(io.StringIO())
        broker = CcxtBroker(store, spec, make_ccxt_kraken(server, timeout=2000), logger=log,
                            backoff=0.01)
        assert LiveRunner(spec, broker, store, feed, mode="live", logger=log).run() \
            .bars_processed == len(frame)
        assert server.errors == [] and server.duplicate_client_ids() == {}
        return feed.fills(), exit_kinds(server), store


def test_stop_loss_and_take_profit_fill_as_the_backtest_does(tmp_path):
    frame = synthetic_ohlcv(n_bars=200, seed=5).ohlcv
    expected = backtest_fills(frame)
    got, kinds, store = _live_fills(frame, exits_spec(), tmp_path)
    # both exits must have fired at the exchange for the comparison to prove anything
    assert kinds["stop-loss"].count("closed") >= 2 and kinds["take-profit"].count("closed") >= 1
    # this data has one bar where a signal exit due at the open meets a level reached later
    assert len(open_first_exits(frame, expected)) == 1
    assert_same_fills(got, expected)
    # one position, two exits: each fill of one cancelled the other; none left behind
    n_closed = kinds["stop-loss"].count("closed") + kinds["take-profit"].count("closed")
    assert kinds["stop-loss"].count("open") + kinds["take-profit"].count("open") <= 2
    assert (kinds["stop-loss"].count("canceled") + kinds["take-profit"].count("canceled")
            >= n_closed)
    # the state file recorded each exchange fill once
    recorded = sorted((s, round(p, 8), round(z, 8)) for _, _, s, p, z, _ in store.fills())
    assert recorded == sorted((s, round(p, 8), round(z, 8)) for _, s, p, z in got)
    assert "cancelling" not in {o.status for o in store.orders()}


def test_exits_fill_as_the_backtest_does_on_a_real_market(tmp_path):
    """BTC/USDT 1h (700 bars from 2022-02-09, among them one where a signal exit due at the
    open meets a level the bar reaches later): opens differ from the previous closes in half
    the bars, so market orders fill at the next open, as they would after a close."""
    from quantlib.data import load_ohlcv
    from tests.conftest import shared_data_path

    frame = load_ohlcv(shared_data_path("btc_usdt_1h_2022_2023.csv")).iloc[946:1646]
    params = {"fast": 5, "slow": 20}
    expected = backtest_fills(frame, params)
    got, kinds, _ = _live_fills(frame, exits_spec(params, "BTC/USDT"), tmp_path,
                                next_open=True)
    assert kinds["stop-loss"].count("closed") >= 5 and kinds["take-profit"].count("closed") >= 2
    assert len(open_first_exits(frame, expected, params)) == 1
    assert_same_fills(got, expected)
