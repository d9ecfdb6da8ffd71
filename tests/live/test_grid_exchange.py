"""Grid trading at the exchange: resting limit orders on the loopback Kraken server.

The server fills a resting limit order when its price crosses it (at the limit price); a feed
walks the server's price along each bar's path (open -> low -> high -> close on an up bar,
open -> high -> low -> close otherwise) before the runner sees the bar closed, so every order
the bar's range reaches fills, as the engine's "bar" fill model says. Real ``ccxt.kraken`` signs
and parses every request. Parity with the backtest on real data: test_grid_fill_parity.py.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
import pytest

from quantlib.core import grid_nb as nb
from quantlib.core.grid_kind import GridState, step_bar
from quantlib.data import synthetic_ohlcv
from quantlib.live.brokers.ccxt_broker import CcxtBroker
from quantlib.live.feeds import Bar
from quantlib.live.grid_exchange import BOOK_KEY, Book, GridAtExchange, atr_at_close
from quantlib.live.logs import JsonLogger
from quantlib.live.paths import GridRule
from quantlib.live.runner import LiveRunner
from quantlib.live.state import StateStore
from tests.live._approve import promoted
from tests.live.conftest import make_spec
from tests.support.kraken_server import KrakenServer, make_ccxt_kraken

START = pd.Timestamp("2024-01-01", tz="UTC")


class Crash(BaseException):
    """A simulated process death (BaseException: nothing in the runner catches it)."""


class PathFeed:
    """Closed bars for the runner; the first time bar t is handed over, the exchange's price
    first walks bar t's intrabar path. A restarted runner is handed the bars again (it skips
    those it processed) but the market moves only once: time does not rewind."""

    def __init__(self, server: KrakenServer, rows: list[tuple[float, float, float, float]]):
        self.server, self.rows, self.walked = server, rows, 0

    def __iter__(self):
        for i, (o, h, lo, c) in enumerate(self.rows):
            if i >= self.walked:
                for price in ((o, lo, h, c) if c >= o else (o, h, lo, c)):
                    self.server.set_price("BTC/USD", price)
                self.walked = i + 1
            time_ms = int((START + pd.Timedelta(hours=i)).value // 1_000_000)
            yield Bar(time_ms, o, h, lo, c, 1.0)


def _spec(**params):
    grid = {"spacing": "arithmetic", "n_levels": 5, "lower": 90.0, "upper": 110.0,
            "order_value": 1000.0}
    grid.update(params)
    return make_spec("grid", grid, exchange="kraken", execution={"fees": 0.0},
                     approval={"status": "approved", "by": "test"})


def _runner(spec, server, state, feed, **risk):
    if risk:
        spec = spec.model_copy(update={"risk": spec.risk.model_copy(update=risk)})
    store = StateStore(state, durable=True)
    log = JsonLogger(io.StringIO())
    broker = CcxtBroker(store, spec, make_ccxt_kraken(server, timeout=2000), logger=log,
                        backoff=0.01)
    return LiveRunner(spec, broker, store, feed, mode="live", logger=log), store


def _server(usd=10_000.0):
    server = KrakenServer(symbol="BTC/USD").start()
    server.set_balance("USD", usd)
    server.set_price("BTC/USD", 100.0)
    return server


def _orders(server):
    """(client id, side, price, volume, status) of every order the exchange received."""
    return sorted((o["cl_ord_id"], o["descr"]["type"], float(o["descr"]["price"]),
                   float(o["vol"]), o["status"]) for o in server.orders.values())


HAND_BARS = [(102.0, 102.5, 101.5, 102.0),   # rest buys at 100, 95, 90
             (102.0, 102.5, 99.0, 101.0),    # buy @100 fills -> sell 10 @105
             (101.0, 106.0, 100.5, 105.5),   # sell @105 fills -> buys at 105 and 100 again
             (105.5, 105.8, 104.0, 104.5)]   # buy @105 fills -> sell @110


def test_a_hand_built_grid_trades_at_the_exchange(tmp_path):
    server = _server()
    try:
        runner, store = _runner(_spec(), server, tmp_path / "g.db", PathFeed(server, HAND_BARS))
        runner.run()
        by_price = {}
        for _, side, price, vol, status in _orders(server):
            by_price.setdefault((side, price), []).append((round(vol, 8), status))
        q105 = math.floor(1000.0 / 105.0 * 1e8) / 1e8  # ccxt truncates to Kraken's 8 decimals
        assert by_price == {
            ("buy", 100.0): [(10.0, "closed"), (10.0, "open")],
            ("buy", 95.0): [(math.floor(1000 / 95 * 1e8) / 1e8, "open")],
            ("buy", 90.0): [(math.floor(1000 / 90 * 1e8) / 1e8, "open")],
            ("sell", 105.0): [(10.0, "closed")],
            ("buy", 105.0): [(q105, "closed")],
            ("sell", 110.0): [(q105, "open")],
        }
        # cash: -1000 (buy @100) +1050 (sell @105) - q105 * 105 (buy @105); no fees here
        assert server.balance("USD") == pytest.approx(10_000 - 1000 + 1050 - q105 * 105, abs=1e-6)
        assert server.balance("BTC") == pytest.approx(q105, abs=1e-12)
        book = store.get_json(BOOK_KEY)
        assert book["levels"] == [90.0, 95.0, 100.0, 105.0, 110.0]
        assert book["holding"] == [0.0, 0.0, 0.0, pytest.approx(q105, abs=1e-12), 0.0]
        assert [(f[2], f[3]) for f in store.fills()] == [(1, 100.0), (-1, 105.0), (1, 105.0)]
        assert server.duplicate_client_ids() == {}
    finally:
        server.stop()


def _random_rows(n=120, seed=5):
    df = synthetic_ohlcv(n_bars=n, seed=seed).ohlcv
    # scaled so that the bars swing through the grid: low at 91, high at 109
    lo, hi = float(df["low"].min()), float(df["high"].max())
    df = (df[["open", "high", "low", "close"]] - lo) * (18.0 / (hi - lo)) + 91.0
    return [tuple(float(x) for x in row) for row in df.itertuples(index=False)]


def _reference(tmp_path, rows, spec):
    server = _server()
    try:
        runner, store = _runner(spec, server, tmp_path / "ref.db", PathFeed(server, rows))
        runner.run()
        return _orders(server), server.balance("USD"), server.balance("BTC"), store
    finally:
        server.stop()


def test_book_and_exchange_agree_on_random_bars(tmp_path):
    rows = _random_rows()
    orders, usd, btc, store = _reference(tmp_path, rows, _spec(n_levels=17))
    book = store.get_json(BOOK_KEY)
    fills = store.fills()
    assert len(fills) >= 6  # the grid really traded
    assert btc == pytest.approx(sum(book["holding"]), abs=1e-9)
    levels = book["levels"]
    for _cid, side, price, _vol, _status in orders:
        # buys rest on levels 0..n-2, sells one level above (prices rounded to Kraken's 0.1)
        allowed = levels[:-1] if side == "buy" else levels[1:]
        assert any(abs(price - lvl) <= 0.05 for lvl in allowed), (side, price)
    open_orders = [o for o in orders if o[4] == "open"]
    assert len(open_orders) == len({(o[1], o[2]) for o in open_orders})  # one per slot
    assert len({o[0] for o in orders}) == len(orders)


@pytest.mark.parametrize("where", ["before_flush", "after_exchange_took_it", "during_sync"])
def test_a_crash_anywhere_changes_nothing_at_the_exchange(tmp_path, monkeypatch, where):
    rows = _random_rows()
    spec = _spec(n_levels=17)
    ref_orders, ref_usd, ref_btc, _ = _reference(tmp_path, rows, spec)

    server = _server()
    feed = PathFeed(server, rows)
    state = tmp_path / "crashed.db"
    # the process dies at the first chance from each of these bars on (once per bar)
    triggers = [3, 10, 25, 40, 60, 90]
    real_flush, real_send = GridAtExchange.flush, CcxtBroker._send
    real_lookup = CcxtBroker.lookup

    def maybe_crash():
        if triggers and triggers[0] <= feed.walked:
            triggers.pop(0)
            raise Crash

    def flush(self):
        maybe_crash()  # after the decision committed, before anything was sent
        real_flush(self)

    def send(self, current, amount, **kwargs):
        remote = real_send(self, current, amount, **kwargs)
        maybe_crash()  # the exchange has the order, the local record still says "new"
        return remote

    def lookup(self, client_ids):
        found = real_lookup(self, client_ids)
        maybe_crash()  # the exchange's answer is never recorded
        return found

    monkeypatch.setattr(*{"before_flush": (GridAtExchange, "flush", flush),
                          "after_exchange_took_it": (CcxtBroker, "_send", send),
                          "during_sync": (CcxtBroker, "lookup", lookup)}[where])
    crashes = 0
    try:
        while True:
            runner, store = _runner(spec, server, state, feed)  # a new process
            try:
                runner.run()
                break
            except Crash:
                crashes += 1
            finally:
                store.close()
        assert crashes == 6
        assert server.duplicate_client_ids() == {}
        assert _orders(server) == ref_orders
        assert (server.balance("USD"), server.balance("BTC")) == (
            pytest.approx(ref_usd, abs=1e-9), pytest.approx(ref_btc, abs=1e-12))
    finally:
        server.stop()


@pytest.mark.parametrize(("kind", "status"), [("http", 503), ("timeout", None), ("lost", None),
                                              ("malformed", None)])
def test_exchange_faults_on_limit_orders_never_double_order(tmp_path, kind, status):
    rows = HAND_BARS
    ref_orders, ref_usd, _, _ = _reference(tmp_path, rows, _spec())
    server = _server()
    server.fault_delay = 4.0  # outlasts the client's 2 s timeout
    try:
        for endpoint in ("AddOrder", "OpenOrders", "CancelOrder"):
            server.inject_fault(endpoint, kind, times=1, status=status, after=1)
        runner, _ = _runner(_spec(), server, tmp_path / "f.db", PathFeed(server, rows))
        runner.run()
        assert server.duplicate_client_ids() == {}
        assert _orders(server) == ref_orders
        assert server.balance("USD") == pytest.approx(ref_usd, abs=1e-9)
    finally:
        server.stop()


def test_stop_out_cancels_everything_and_sells_the_inventory(tmp_path):
    rows = HAND_BARS[:2] + [(101.0, 101.2, 80.0, 81.0),   # buys at 95 and 90 fill, close < stop
                            (81.0, 120.0, 80.5, 119.0)]   # stopped: nothing may trade again
    server = _server()
    try:
        runner, store = _runner(_spec(stop_out=True, stop_margin=0.05), server,
                                tmp_path / "s.db", PathFeed(server, rows))
        runner.run()
        statuses = {(o[1], o[2]): o[4] for o in _orders(server)}
        assert "open" not in statuses.values()
        market_sells = [o for o in server.orders.values() if o["descr"]["ordertype"] == "market"]
        assert len(market_sells) == 1 and market_sells[0]["status"] == "closed"
        assert server.balance("BTC") == pytest.approx(0.0, abs=1e-12)
        # sold at 81 (the price when the stop was acted on), all three buys' units
        sold = float(market_sells[0]["vol"])
        assert sold == pytest.approx(10.0 + 1000 / 95 + 1000 / 90, abs=1e-7)
        assert store.get_json(BOOK_KEY)["stopped"] is True
    finally:
        server.stop()


def test_a_risk_halt_cancels_the_resting_buys(tmp_path):
    server = _server()
    try:
        rows = HAND_BARS[:2] + [(101.0, 101.2, 93.0, 94.0)]  # the buy @95 fills: drawdown
        runner, store = _runner(_spec(), server, tmp_path / "h.db", PathFeed(server, rows),
                                max_drawdown=0.0005)
        runner.run()
        open_orders = [o for o in _orders(server) if o[4] == "open"]
        assert open_orders and all(side == "sell" for _, side, *_ in open_orders)
        assert store.get_meta("halted")
    finally:
        server.stop()


def _run_volatility_grid(server, state, rows, **params):
    """A volatility-spaced grid (no fixed bounds) run over ``rows``: the store, and each
    order's last status by (side, price)."""
    spec = _spec(spacing="volatility", lower=0.0, upper=0.0, **params)
    runner, store = _runner(spec, server, state, PathFeed(server, rows))
    runner.run()
    return store, {(side, price): status for _, side, price, _, status in _orders(server)}


def test_a_volatility_grid_is_built_and_recentred_at_the_exchange(tmp_path):
    """Hand-built ATR: atr_period 2, atr_k 1. Bar 1's close is the first with 2 true ranges
    (2 and 3): a 5-level grid centred on 101, spacing 2.5. After the buy @98.5 and its sell @101
    the grid is flat with the price (119) outside it: re-centred on 119 with the ATR of bars 2
    and 3 (true ranges 3.5 and 20 -> spacing 11.75); the stale buy @96 is cancelled."""
    rows = [(100.0, 101.0, 99.0, 100.0), (100.0, 102.0, 99.0, 101.0),
            (101.0, 101.5, 98.0, 100.0), (100.0, 120.0, 100.0, 119.0)]
    server = _server()
    try:
        store, got = _run_volatility_grid(server, tmp_path / "v.db", rows, atr_period=2,
                                          atr_k=1.0)
        assert got == {("buy", 96.0): "canceled", ("buy", 98.5): "closed",
                       ("sell", 101.0): "closed", ("buy", 95.5): "open",
                       ("buy", 107.2): "open"}  # 107.25 rounded down to Kraken's 0.1 tick
        levels = store.get_json(BOOK_KEY)["levels"]
        assert levels == [119 + (j - 2) * 11.75 for j in range(5)]
        assert server.balance("BTC") == pytest.approx(0.0, abs=1e-9)
        assert server.duplicate_client_ids() == {}
    finally:
        server.stop()


def test_a_near_flat_history_rests_no_grid_at_the_exchange(tmp_path):
    """The degenerate-grid rule (quantlib.core.grid_nb): atr_period 1, atr_k 0.5. Bar 0's range
    1e-9 would give levels 5e-10 apart around 100, below 1e-10 x 100 (and Kraken's 0.1 tick would
    round them onto one price): no grid, no order. Bar 1 is flat (true range 0). Bar 2's true
    range 3 builds 97, 98.5, 100, 101.5, 103 around its close 100: buys at 98.5 and 97."""
    rows = [(100.0, 100.0 + 1e-9, 100.0, 100.0), (100.0, 100.0, 100.0, 100.0),
            (100.0, 102.0, 99.0, 100.0)]
    server = _server()
    try:
        store, got = _run_volatility_grid(server, tmp_path / "f.db", rows, atr_period=1,
                                          atr_k=0.5)
        assert got == {("buy", 98.5): "open", ("buy", 97.0): "open"}
        assert store.get_json(BOOK_KEY)["levels"] == [97.0, 98.5, 100.0, 101.5, 103.0]
    finally:
        server.stop()


@pytest.mark.parametrize("rows", [
    # threshold at centre 100: 1e-8; true ranges 4e-8 (step 2e-8, built) and 1e-8 (5e-9, not)
    [(100.0, 100.0 + 4e-8, 100.0, 100.0), (100.0,) * 4],
    [(100.0, 100.0 + 1e-8, 100.0, 100.0), (100.0,) * 4],
    # a grid 98..102 from bar 0; the price creeps 1e-12 above it: the ATR 1e-12 keeps it there
    [(100.0, 101.0, 99.0, 100.0), (100.0, 102.0, 100.0, 102.0),
     (102.0, 102.0 + 1e-12, 102.0, 102.0 + 1e-12), (102.0 + 1e-12,) * 4],
])
def test_the_exchange_book_builds_volatility_grids_as_the_engine_does(rows):
    """Book.recentre on the runner's ATR against the engine's "bar" model stepped over the same
    bars (GridState, the paper broker's kernel): the same levels after every close."""
    params = {"spacing": "volatility", "n_levels": 5, "atr_period": 1, "atr_k": 0.5,
              "order_value": 100.0}
    paper = GridState.start(params, first_open=rows[0][0])
    book = Book(levels=[], holding=[0.0] * 5, order_value=100.0, stop_margin=-1.0, atr_k=0.5)
    ohlc = np.array(rows, dtype=np.float64)
    for t, bar in enumerate(rows):
        step_bar(paper, bar)
        book.recentre(bar[3], atr_at_close(ohlc[:t + 1], {**params, "atr_period": 1}))
        engine = [float(x) for x in paper.levels] if paper.state[nb.S_HAS_GRID] else []
        assert book.levels == engine, t
    assert paper.fills == []


def test_the_command_line_runs_a_grid_at_the_exchange(tmp_path, monkeypatch):
    """`quantlib live run --mode live` with a grid spec: keys from the environment, orders
    resting at the (loopback) exchange, no key in any output."""
    from typer.testing import CliRunner

    from quantlib.cli import app
    from quantlib.data import save_ohlcv

    server = _server()
    try:
        monkeypatch.setenv("QUANTLIB_KRAKEN_API_KEY", server.api_key)
        monkeypatch.setenv("QUANTLIB_KRAKEN_SECRET", server.secret)
        monkeypatch.setenv("QUANTLIB_KRAKEN_API_URL", server.url)
        index = pd.date_range(START, periods=2, freq="1h", name="timestamp")
        bars = pd.DataFrame([r + (1.0,) for r in HAND_BARS[:2]], index=index,
                            columns=["open", "high", "low", "close", "volume"])
        bars.attrs.update(timeframe="1h", symbol="BTC/USD")
        replay = tmp_path / "bars.csv"
        save_ohlcv(bars, replay)
        spec_path = promoted(_spec(), tmp_path)
        out = CliRunner().invoke(app, ["live", "run", "--strategy", str(spec_path),
                                       "--mode", "live", "--feed", f"replay:{replay}",
                                       "--state", str(tmp_path / "g.db"),
                                       "--log-file", str(tmp_path / "g.log")])
        assert out.exit_code == 0, out.output
        # the server's price stayed at 100: buys rest at the levels below the last close (101)
        assert sorted((o[1], o[2], o[4]) for o in _orders(server)) == [
            ("buy", 90.0, "open"), ("buy", 95.0, "open"), ("buy", 100.0, "open")]
        for blob in (out.output, (tmp_path / "g.log").read_text()):
            assert server.secret not in blob and server.api_key not in blob
    finally:
        server.stop()


class StopAfter(PathFeed):
    """Engages the kill switch (as `quantlib live stop` writes it) once ``n`` bars went by."""

    def __init__(self, server, rows, n: int, stop_file, text: str):
        super().__init__(server, rows)
        self.n, self.stop_file, self.text = n, stop_file, text

    def __iter__(self):
        for i, bar in enumerate(super().__iter__()):
            if i == self.n:
                self.stop_file.write_text(self.text)
            yield bar


@pytest.mark.parametrize("cancel", [True, False])
def test_stop_with_cancel_orders_pulls_the_resting_grid(tmp_path, cancel):
    from quantlib.live.cli import stop_file_for, stop_request

    state = tmp_path / "g.db"
    # what `live stop [--cancel-orders]` writes (tests/live/test_kill_switch.py), to the feed
    text = stop_request(cancel)
    server = _server()
    try:
        # the third bar does not move the price: it only brings the kill switch to the runner
        feed = StopAfter(server, HAND_BARS[:2] + [(101.0,) * 4], 2, stop_file_for(state), text)
        spec = _spec()
        store = StateStore(state, durable=True)
        broker = CcxtBroker(store, spec, make_ccxt_kraken(server, timeout=2000), backoff=0.01,
                            logger=JsonLogger(io.StringIO()))
        summary = LiveRunner(spec, broker, store, feed, mode="live",
                             stop_file=stop_file_for(state),
                             logger=JsonLogger(io.StringIO())).run()
        assert summary.stopped_by == "kill_switch" and summary.bars_processed == 2
        still_open = [o for o in _orders(server) if o[4] == "open"]
        if cancel:
            assert still_open == []
            assert {o.status for o in store.orders()} <= {"filled", "cancelled"}
            # the buy @100 filled on bar 1: its 10 units stay in the account, on the book
            assert server.balance("BTC") == pytest.approx(10.0)
            assert store.get_json(BOOK_KEY)["holding"][2] == pytest.approx(10.0)
        else:  # the grid keeps resting: buys at 95 and 90, the sell of the @100 buy at 105
            assert sorted((o[1], o[2]) for o in still_open) == [
                ("buy", 90.0), ("buy", 95.0), ("sell", 105.0)]
    finally:
        server.stop()


def test_a_wrapping_kind_that_forbids_buys_pulls_them_and_keeps_the_sells(tmp_path, monkeypatch):
    """regime_grid at the exchange: when its condition fails at a close, the resting buys are
    cancelled and the sells of held levels stay (the engine's inactive-bar rule)."""
    calls = []

    def allowed(self, offset):
        calls.append(offset)
        return len(calls) <= 2  # buys allowed after bars 0 and 1, not after bar 2

    monkeypatch.setattr(GridRule, "buys_allowed", allowed)
    server = _server()
    try:
        rows = HAND_BARS[:2] + [(101.0,) * 4]
        runner, _ = _runner(_spec(), server, tmp_path / "w.db", PathFeed(server, rows))
        runner.run()
        assert calls == [1, 1, 1]  # the condition at each close decides the next bar's buys
        still_open = sorted((o[1], o[2]) for o in _orders(server) if o[4] == "open")
        assert still_open == [("sell", 105.0)]
    finally:
        server.stop()


def test_regime_grid_spec_trades_its_inner_grid_at_the_exchange(tmp_path):
    from quantlib.core.regime_kinds import regime_filter_params
    from quantlib.core.registry import get_kind
    from quantlib.data import synthetic_ohlcv
    from quantlib.regime import GaussianHMMRegime, regime_features

    data = synthetic_ohlcv(n_bars=300, seed=2).ohlcv
    hmm = GaussianHMMRegime(2, n_restarts=1, random_state=0).fit(
        regime_features(data, ["returns"]))
    inner = {"spacing": "geometric", "n_levels": 6, "lower": 90.0, "upper": 110.0}
    spec = make_spec("regime_grid", regime_filter_params(hmm, "grid", inner), exchange="kraken",
                     approval={"status": "approved", "by": "test"})
    server = _server()
    try:
        runner, _ = _runner(spec, server, tmp_path / "r.db", [])
        assert runner.path.venue.params == get_kind("grid").validate(inner)
    finally:
        server.stop()


def test_limit_prices_never_cross_their_level(tmp_path):
    """Buys round down and sells round up to the exchange's tick (0.1 at the loopback Kraken),
    in either of ccxt's precision modes."""
    import ccxt

    server = _server()
    try:
        store = StateStore(tmp_path / "t.db")
        broker = CcxtBroker(store, _spec(), make_ccxt_kraken(server), backoff=0.01,
                            logger=JsonLogger(io.StringIO()))
        cases = [(107.25, False, 107.2), (107.25, True, 107.3), (95.5, False, 95.5),
                 (95.5, True, 95.5), (0.1 + 0.2, True, 0.3), (99.99999, False, 99.9)]
        for price, up, expected in cases:
            assert broker._on_tick(price, up=up) == expected, (price, up)
        broker.exchange.load_markets()
        broker.exchange.markets["BTC/USD"]["precision"]["price"] = 1  # as decimal places
        broker.exchange.precisionMode = ccxt.DECIMAL_PLACES
        for price, up, expected in cases:
            assert broker._on_tick(price, up=up) == expected, (price, up)
    finally:
        server.stop()


def test_a_stop_before_the_first_bar_leaves_no_grid_behind(tmp_path):
    """Regression: `live stop --cancel-orders` before any bar synced with no price and stored a
    relative-bounds grid whose levels were NaN, for every later run on that state file."""
    server = _server()
    try:
        spec = _spec(lower=0.0, upper=0.0, lower_pct=0.1, upper_pct=0.1)
        runner, store = _runner(spec, server, tmp_path / "n.db", [])
        runner.path.venue.cancel_all()
        assert store.get_json(BOOK_KEY) is None
        runner, store = _runner(spec, server, tmp_path / "n.db", PathFeed(server, HAND_BARS[:1]))
        runner.run()
        assert store.get_json(BOOK_KEY)["levels"] == pytest.approx([91.8, 96.9, 102.0, 107.1,
                                                                     112.2])
    finally:
        server.stop()
