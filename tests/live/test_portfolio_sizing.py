"""Percent sizing of a portfolio spec live: each entry is sized, when it is sent, from the quote
balance the exchange reports after the bar's earlier orders filled, at the ask quoted then (the
backtest's rule: a later symbol's percent entry spends a fraction of the cash the earlier fills
left, at its fill price). The loopback quotes the last price as the ask: the close here.

Checked on the loopback Kraken with three markets walked bar by bar:

- a venue that fills market orders at the close (= the synthetic data's next open, no
  slippage): the fills equal vectorbt's (``run_backtest`` on the ``{symbol: frame}`` dict) in
  bar, side and price exactly and in units to the 1e-8 lot (relative 1e-7: an earlier
  entry's units truncated to the lot leave a little more cash for the next);
- a venue that slips 30 bp: each entry's units are ``x * quote balance before it / (close *
  (1 + fees))``, the balance taken from the exchange's own ledger of fills (independent of
  the runner's books); so an entry spends the backtest rule's budget times ``fill / ask`` and
  nothing else. The runner's former estimate (earlier entries costed at the close) would
  differ on later symbols, which the test also shows.
"""

from __future__ import annotations

import io
import math

import pandas as pd
import pytest

from quantlib.backtest.engine import run_backtest
from quantlib.core.config import BacktestConfig
from quantlib.data import synthetic_ohlcv
from quantlib.live.brokers.ccxt_broker import CcxtBroker
from quantlib.live.feeds import Bar, Feed
from quantlib.live.logs import JsonLogger
from quantlib.live.runner import LiveRunner
from quantlib.live.state import StateStore
from tests.live.conftest import make_spec
from tests.support.kraken_server import KrakenServer, make_ccxt_kraken

SYMBOLS = ["BTC/USD", "ETH/USD", "SOL/USD"]
PARAMS = {"fast": 3, "slow": 10}
SIZE, FEES, LOT = 0.3, 0.001, 1e-8
N_BARS = 200


@pytest.fixture(scope="module")
def frames():
    return {s: synthetic_ohlcv(n_bars=N_BARS, seed=k).ohlcv for k, s in enumerate(SYMBOLS, 31)}


class WalkedPortfolio(Feed):
    """``{symbol: Bar}`` per bar; before bar i is handed over each market walks it. An order
    sent at bar i's close is the backtest's fill at bar i+1's open (``bar_of``)."""

    def __init__(self, server: KrakenServer, frames: dict[str, pd.DataFrame]):
        self.server, self.frames, self.symbols = server, frames, list(frames)
        self.times = next(iter(frames.values())).index.as_unit("ms").asi8
        self.bar_of: dict[str, int] = {}

    def _note(self, bar: int) -> None:
        for txid, order in self.server.orders.items():
            if order["status"] == "closed":
                self.bar_of.setdefault(txid, bar)

    def __iter__(self):
        for i, t in enumerate(self.times):
            self._note(i)
            bars = {}
            for symbol, frame in self.frames.items():
                o, h, lo, c, v = (float(x) for x in frame.iloc[i][
                    ["open", "high", "low", "close", "volume"]])
                self.server.walk_bar(symbol, o, h, lo, c)
                bars[symbol] = Bar(int(t), o, h, lo, c, v)
            yield bars


def _live(frames, tmp_path, slippage_bps: float):
    spec = make_spec("ma_cross", PARAMS, symbols=SYMBOLS, exchange="kraken",
                     approval={"status": "approved", "by": "t"},
                     execution={"fees": FEES, "slippage_bps": 0.0},
                     risk={"order_size": SIZE, "size_type": "percent"})
    with KrakenServer(symbol=SYMBOLS[0], fee_rate=FEES,
                      extra_slippage_bps=slippage_bps) as server:
        for symbol in SYMBOLS[1:]:
            server.add_pair(symbol)
        for symbol, frame in frames.items():
            server.set_price(symbol, float(frame["open"].iloc[0]))
        server.set_balance("USD", spec.risk.init_cash)
        feed = WalkedPortfolio(server, frames)
        store = StateStore(tmp_path / f"live{slippage_bps}.db")
        log = JsonLogger(io.StringIO())
        broker = CcxtBroker(store, spec, make_ccxt_kraken(server, timeout=2000), logger=log,
                            backoff=0.01)
        LiveRunner(spec, broker, store, feed, mode="live", logger=log).run()
        feed._note(N_BARS)
        assert server.errors == [] and server.duplicate_client_ids() == {}
        # the exchange's ledger, in the order it filled them
        return [(o["_symbol"], feed.bar_of[txid], 1 if o["descr"]["type"] == "buy" else -1,
                 float(o["price"]), float(o["vol_exec"]))
                for txid, o in server.orders.items() if o["status"] == "closed"]


def test_portfolio_percent_entries_fill_as_the_backtest_on_a_venue_without_slippage(
        frames, tmp_path):
    res = run_backtest("ma_cross", frames, PARAMS,
                       BacktestConfig(fees=FEES, slippage_bps=0.0, size=SIZE))
    f = res.fills
    times = list(pd.DatetimeIndex(f["time"]).as_unit("ms").asi8)
    bar_index = {int(t): i for i, t in enumerate(frames[SYMBOLS[0]].index.as_unit("ms").asi8)}
    expected = [(str(s), bar_index[int(t)], int(d), float(p), float(z))
                for s, t, d, p, z in zip(f["symbol"], times, f["side"], f["price"], f["size"],
                                         strict=True)]
    got = _live(frames, tmp_path, 0.0)
    assert {g[0] for g in got} == set(SYMBOLS)
    # a real portfolio: in some bar two symbols enter on the shared cash
    entries_per_bar = pd.Series([g[1] for g in got if g[2] > 0]).value_counts()
    assert entries_per_bar.max() >= 2
    assert len(got) == len(expected)
    for mine, want in zip(got, expected, strict=True):  # the same order within each bar
        assert mine[:4] == want[:4], (mine, want)
        # units to the lot; an earlier entry's truncated units leave a little more cash
        assert mine[4] == pytest.approx(want[4], rel=1e-7, abs=2 * LOT), (mine, want)


def test_portfolio_percent_entries_size_from_the_cash_the_earlier_fills_left(frames, tmp_path):
    slip = 30.0
    got = _live(frames, tmp_path, slip)
    closes = {s: f["close"].to_numpy() for s, f in frames.items()}
    usd = 10_000.0
    bar_start = {}  # the quote balance when each bar's orders began
    differs = 0
    for symbol, bar, side, price, units in got:
        start = bar_start.setdefault(bar, {"usd": usd, "spent_at_close": 0.0})
        close = closes[symbol][bar - 1]  # decided at the previous bar's close
        if side > 0:
            assert price == pytest.approx(close * (1 + slip / 1e4), rel=1e-12)
            wanted = SIZE * usd / (close * (1 + FEES))
            assert wanted - 2 * LOT <= units <= wanted + 1e-12, (symbol, bar)
            # what it spent: the rule's budget times fill / close (to the lot)
            spent = units * price * (1 + FEES)
            assert spent == pytest.approx(SIZE * usd * price / close, abs=3 * LOT * price)
            # the former estimate costed earlier entries of the bar at the close
            estimate = SIZE * (start["usd"] - start["spent_at_close"]) / (close * (1 + FEES))
            differs += not math.isclose(estimate, wanted, rel_tol=1e-9)
            start["spent_at_close"] += units * close * (1 + FEES)
            usd -= spent
        else:
            usd += units * price * (1 - FEES)
            start["spent_at_close"] -= units * close * (1 - FEES)
    assert differs >= 1, "a later symbol's entry must show the difference"
