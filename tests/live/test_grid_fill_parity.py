"""PARITY of the grid's fill rule on real data: backtest = paper replay = a loopback exchange.

One rule, written once in :mod:`quantlib.core.grid_nb` (the "bar" fill model, the default):
the book decided at close t rests during bar t+1 and fills where bar t+1's range reaches it, at
the limit prices. Three independent executions of it must agree on every fill (time, side, price,
size):

- the backtest (``run_grid``, the numba kernel over the whole file);
- the paper runner (``LiveRunner`` + ``PaperBroker`` replaying the file bar by bar, which steps
  the same kernel one closed bar at a time);
- the exchange grid (``LiveRunner`` in live mode, :mod:`quantlib.live.grid_exchange`) resting
  real limit orders, through a real ``ccxt.kraken``, at the loopback Kraken server: before the
  runner is handed bar t, the server's price walks bar t's path (open, low/high in the bar's
  order, close), and the server fills every resting limit the price crosses, at its limit price
  (market orders at the current price). Nothing in the exchange path calls the kernel's fills.

The exchange trades amounts on 8 decimals (ccxt truncates), so its sizes may be below the
backtest's by less than 1e-8; every other field is equal.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from quantlib.backtest.grid import run_grid
from quantlib.data import save_ohlcv
from quantlib.live.brokers import PaperBroker
from quantlib.live.brokers.ccxt_broker import CcxtBroker
from quantlib.live.feeds import Bar
from quantlib.live.logs import JsonLogger
from quantlib.live.replay_feeds import ReplayFeed
from quantlib.live.runner import LiveRunner
from quantlib.live.state import StateStore
from tests.live.conftest import make_spec
from tests.support.kraken_server import KrakenServer, make_ccxt_kraken

LOT = 1e-8  # the loopback pair's amount precision (lot_decimals 8)


class FineTickKraken(KrakenServer):
    """The loopback Kraken with a price tick of 1e-8 instead of 0.1, so that a volatility grid's
    levels (any float) reach the exchange unrounded to within 1e-8."""

    def _public_AssetPairs(self, params: dict) -> dict:
        pairs = super()._public_AssetPairs(params)
        for pair in pairs.values():
            pair.update(pair_decimals=8, tick_size="0.00000001")
        return pairs


class ExchangeReplay:
    """Closed bars for the runner. Before bar t is handed over, the exchange's price walks bar
    t's path; the orders the exchange closes meanwhile are bar t's fills. Orders that close
    while the runner handles bar t (a stop-out's market sell) belong to bar t too."""

    def __init__(self, server: KrakenServer, symbol: str, frame: pd.DataFrame):
        self.server, self.symbol, self.frame = server, symbol, frame
        self.fill_bar: dict[str, int] = {}  # txid -> bar index

    def __iter__(self):
        rows = self.frame[["open", "high", "low", "close", "volume"]].itertuples(name=None)
        for i, (when, o, h, lo, c, v) in enumerate(rows):
            # what the runner's orders for bar i - 1's close did at once
            self.server.note_closed(self.fill_bar, i - 1)
            for price in ((o, lo, h, c) if c >= o else (o, h, lo, c)):
                self.server.set_price(self.symbol, price)
            self.server.note_closed(self.fill_bar, i)
            yield Bar(int(when.value // 1_000_000), o, h, lo, c, v)

    def fills(self) -> list[tuple[int, int, float, float]]:
        """(bar time ms, side, price, amount) of every fill, as the exchange made them."""
        self.server.note_closed(self.fill_bar, len(self.frame) - 1)
        times = self.frame.index.as_unit("ms").asi8
        out = []
        for txid, bar in self.fill_bar.items():
            order = self.server.orders[txid]
            side = 1 if order["descr"]["type"] == "buy" else -1
            out.append((int(times[bar]), side, float(order["price"]), float(order["vol_exec"])))
        return sorted(out)


def _spec(symbol: str, params: dict, init_cash: float, timeframe: str = "1h"):
    return make_spec("grid", params, symbols=[symbol], timeframe=timeframe, exchange="kraken",
                     execution={"fees": 0.001, "slippage_bps": 0.0},
                     risk={"init_cash": init_cash},
                     approval={"status": "approved", "by": "test"})


def _backtest(frame: pd.DataFrame, spec) -> tuple[list[tuple], float, float, int]:
    """Fills (time ms, side, price, size), final cash, final inventory, stop-out fills."""
    res = run_grid(frame, [spec.params], spec.backtest_config())
    f = res.fills
    times = pd.DatetimeIndex(f["time"]).as_unit("ms").asi8
    fills = [(int(t), int(s), float(p), float(z)) for t, s, p, z in
             zip(times, f["side"], f["price"], f["size"], strict=True)]
    return (fills, float(res.extras["cash"][0].iloc[-1]), float(res.positions[0].iloc[-1]),
            int((f["level"] < 0).sum()))


def _paper(frame: pd.DataFrame, spec, tmp_path) -> list[tuple]:
    path = save_ohlcv(frame, tmp_path / "replay.csv")
    store = StateStore(tmp_path / "paper.db")
    summary = LiveRunner(spec, PaperBroker(store, spec), store, ReplayFeed(path)).run()
    assert summary.bars_processed == len(frame)
    return [(t, s, p, z) for _, t, s, p, z, _ in store.fills()]


def _exchange(frame: pd.DataFrame, spec, tmp_path, server_class=KrakenServer):
    symbol = spec.symbol
    server = server_class(symbol=symbol, fee_rate=spec.execution.fees).start()
    try:
        server.set_balance("USD", spec.risk.init_cash)
        server.set_price(symbol, float(frame["open"].iloc[0]))
        feed = ExchangeReplay(server, symbol, frame)
        store = StateStore(tmp_path / "live.db", durable=True)
        log = JsonLogger(io.StringIO())
        broker = CcxtBroker(store, spec, make_ccxt_kraken(server, timeout=2000), logger=log,
                            backoff=0.01)
        summary = LiveRunner(spec, broker, store, feed, mode="live", logger=log).run()
        assert summary.bars_processed == len(frame)
        assert not server.errors and server.duplicate_client_ids() == {}
        base = symbol.split("/")[0]
        recorded = sorted((s, p, z) for _, _, s, p, z, _ in store.fills())
        return feed.fills(), server.balance("USD"), server.balance(base), recorded
    finally:
        server.stop()


def _same_fills(exchange: list[tuple], backtest: list[tuple], price_tol: float,
                max_lots: int) -> None:
    """Equal fill for fill within each bar (sorted by time, side, price): time and side
    exactly, price within ``price_tol`` (the exchange's tick), amount truncated to the lot (a
    stop-out sells the sum of up to ``max_lots`` truncated amounts)."""
    assert len(exchange) == len(backtest)
    mine = sorted(backtest)
    for got, want in zip(exchange, mine, strict=True):
        assert got[:2] == want[:2], (got, want)
        assert got[2] == pytest.approx(want[2], abs=price_tol), (got, want)
        assert -1e-12 <= want[3] - got[3] < LOT * max_lots, (got, want)


CASES = {
    # the grid: 51 levels 1500-2000 on ETH/USDT 1h, a week of February 2023
    "eth-1h-arithmetic": ("eth_usdt_1h_2022_2023.csv", "2023-02-01", "2023-02-07", "ETH/USD",
                          {"lower": 1500.0, "upper": 2000.0, "n_levels": 51,
                           "order_value": 100.0}, 10_000.0, KrakenServer, 0.0),
    # the 61 levels 33,000-45,000 on BTC/USDT 5m after the May 2021 crash; the cash
    # pays for at most 10 resting buys, so which ones rest is the budget rule's decision
    "btc-5m-cash-bound": ("btc_usdt_5m_2021_05.csv", "2021-05-21 00:00", "2021-05-21 13:00",
                          "BTC/USD", {"lower": 33_000.0, "upper": 45_000.0, "n_levels": 61,
                                      "order_value": 100.0}, 1_005.0, KrakenServer, 0.0),
    # a geometric grid whose stop-out fires on a close (ETH's fall in May 2022), then idles
    "eth-1h-stop-out": ("eth_usdt_1h_2022_2023.csv", "2022-05-03", "2022-05-09", "ETH/USD",
                        {"spacing": "geometric", "lower": 2500.0, "upper": 3000.0,
                         "n_levels": 31, "order_value": 200.0, "stop_out": True,
                         "stop_margin": 0.02}, 10_000.0, FineTickKraken, 1e-8),
    # a volatility grid, (re)built at closes on the ATR, levels anywhere (fine tick)
    "eth-1h-volatility": ("eth_usdt_1h_2022_2023.csv", "2022-08-01", "2022-08-07", "ETH/USD",
                          {"spacing": "volatility", "n_levels": 15, "atr_period": 24,
                           "atr_k": 0.5, "order_value": 100.0}, 10_000.0, FineTickKraken,
                          1e-8),
}


@pytest.mark.parametrize("case", list(CASES))
def test_backtest_paper_and_exchange_fill_alike_on_real_data(case, shared_data, tmp_path):
    name, start, end, symbol, params, cash, server_class, tick = CASES[case]
    frame = shared_data(name).loc[start:end]
    spec = _spec(symbol, params, cash, frame.attrs["timeframe"])
    expected, bt_cash, bt_inventory, stop_outs = _backtest(frame, spec)
    assert len(expected) >= 100, "the case must trade to prove anything"
    if case == "btc-5m-cash-bound":  # with ample cash other buys would have rested and filled
        rich = _spec(symbol, params, 100 * cash, frame.attrs["timeframe"])
        assert _backtest(frame, rich)[0] != expected
    if params.get("stop_out"):  # the stop-out fired (a market sell of everything, then idle)
        assert stop_outs == 1 and expected[-1][0] < int(frame.index[-2].value // 10**6)

    assert _paper(frame, spec, tmp_path) == expected  # bit for bit

    fills, usd, base, recorded = _exchange(frame, spec, tmp_path, server_class)
    _same_fills(fills, expected, tick, params["n_levels"] if stop_outs else 1)
    # the runner recorded exactly what the exchange did
    assert recorded == sorted((s, p, z) for _, s, p, z in fills)
    # balances: the backtest's, up to the amounts truncated to the lot
    slack = LOT * max(p for _, _, p, _ in expected) * len(expected)
    assert usd == pytest.approx(bt_cash, abs=slack)
    assert base == pytest.approx(bt_inventory, abs=LOT * len(expected))


def test_the_touch_model_is_refused_at_the_exchange(tmp_path):
    from quantlib.errors import LiveError

    spec = _spec("BTC/USD", {"lower": 90.0, "upper": 110.0, "n_levels": 5,
                             "fill_model": "touch"}, 10_000.0)
    server = KrakenServer(symbol="BTC/USD").start()
    try:
        store = StateStore(tmp_path / "t.db")
        broker = CcxtBroker(store, spec, make_ccxt_kraken(server), backoff=0.01,
                            logger=JsonLogger(io.StringIO()))
        with pytest.raises(LiveError, match="'fill_model' is 'touch'"):
            LiveRunner(spec, broker, store, [], mode="live", logger=JsonLogger(io.StringIO()))
    finally:
        server.stop()


def test_touch_model_spec_replays_on_paper_as_backtested(shared_data, tmp_path):
    """The optimistic model is still what the notebook approved: paper replays it exactly."""
    frame = shared_data("eth_usdt_1h_2022_2023.csv").loc["2023-02-01":"2023-02-10"]
    spec = _spec("ETH/USD", {"lower": 1500.0, "upper": 2000.0, "n_levels": 51,
                             "order_value": 100.0, "fill_model": "touch"}, 10_000.0)
    expected = _backtest(frame, spec)[0]
    bar_fills = _backtest(frame, _spec("ETH/USD", dict(spec.params, fill_model="bar"),
                                             10_000.0))[0]
    assert len(expected) > len(bar_fills) >= 10  # the models differ on this data
    assert _paper(frame, spec, tmp_path) == expected
    assert np.all(np.diff([t for t, *_ in expected]) >= 0)
