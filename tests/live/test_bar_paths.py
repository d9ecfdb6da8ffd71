"""The runner's structure (issue #16): one bar path per engine and mode, chosen once; brokers
and feeds say what they are through real members, not attribute probing; state rows are named.

Each test could fail: a spec given the wrong path, a broker subclass taken for another market,
a plain candle accepted by a perp run, a named row whose field reads another SQL column.
"""

from __future__ import annotations

import io
import sqlite3

import numpy as np
import pytest

from quantlib.data import synthetic_ohlcv
from quantlib.errors import LiveError
from quantlib.live.brokers import Broker, PaperBroker
from quantlib.live.brokers.base import PerpBroker
from quantlib.live.brokers.ccxt_broker import CcxtBroker
from quantlib.live.brokers.perp_paper import PaperPerpBroker
from quantlib.live.feeds import Bar, Feed, IterableFeed, PerpBar, as_feed, frame_to_bars
from quantlib.live.logs import JsonLogger
from quantlib.live.paths import ExchangeGridPath, PaperGridPath, SignalPath
from quantlib.live.replay_feeds import ReplayFeed
from quantlib.live.runner import LiveRunner
from quantlib.live.state import (
    ORDER_COLUMNS,
    BarRow,
    CandleRow,
    FillRow,
    OrderRow,
    StateStore,
)
from quantlib.live.status_board import read_status
from quantlib.live.windows import FundingWindow, SignalWindow
from tests.live.conftest import make_spec
from tests.support.kraken_server import KrakenServer, make_ccxt_kraken

GRID = {"spacing": "arithmetic", "n_levels": 5, "lower": 90.0, "upper": 110.0,
        "order_value": 1000.0}


@pytest.fixture(scope="module")
def frame():
    return synthetic_ohlcv(n_bars=120, seed=11).ohlcv


def _runner(spec, broker_class, frame, mode="paper"):
    store = StateStore(":memory:")
    return LiveRunner(spec, broker_class(store, spec), store, ReplayFeed(frame), mode=mode,
                      logger=JsonLogger(io.StringIO()))


# -- one path per engine and mode ----------------------------------------------------------
def test_a_signal_kind_runs_on_the_signal_path_in_paper(frame):
    runner = _runner(make_spec("ma_cross", {"fast": 3, "slow": 8}), PaperBroker, frame)
    assert type(runner.path) is SignalPath


def test_a_grid_kind_steps_the_kernel_in_paper(frame):
    runner = _runner(make_spec("grid", GRID), PaperBroker, frame)
    assert type(runner.path) is PaperGridPath
    # the grid's own parameters, validated: the plain grid's are the spec's
    assert runner.path.rule.params["n_levels"] == 5 and runner.path.rule.buys_allowed(1)


def test_a_grid_kind_rests_orders_at_the_exchange_in_live(frame, tmp_path):
    server = KrakenServer(symbol="BTC/USD").start()
    try:
        spec = make_spec("grid", GRID, exchange="kraken", execution={"fees": 0.0},
                         approval={"status": "approved", "by": "test"})
        store = StateStore(tmp_path / "g.db")
        log = JsonLogger(io.StringIO())
        broker = CcxtBroker(store, spec, make_ccxt_kraken(server), logger=log, backoff=0.01)
        runner = LiveRunner(spec, broker, store, [], mode="live", logger=log)
        assert type(runner.path) is ExchangeGridPath
        assert runner.path.venue.params == runner.path.rule.params
    finally:
        server.stop()


def test_live_grid_on_a_broker_that_cannot_rest_orders_is_refused_naming_it(frame):
    spec = make_spec("grid", GRID, approval={"status": "approved", "by": "test"})
    with pytest.raises(LiveError, match="PaperBroker cannot rest limit orders"):
        _runner(spec, PaperBroker, frame, mode="live")


def test_a_perp_spec_runs_the_signal_path_with_a_funding_window(frame):
    spec = make_spec("ma_cross", {"fast": 3, "slow": 8}, symbols=["BTC/USDT:USDT"],
                     market="perp")
    store = StateStore(":memory:")
    runner = LiveRunner(spec, PaperPerpBroker(store, spec), store, [])
    assert type(runner.path) is SignalPath and isinstance(runner.funding, FundingWindow)
    assert runner.path.ctx.funding is runner.funding  # one window, read by the path


# -- brokers: real members with defaults ----------------------------------------------------
class _PlainBroker(Broker):
    """A broker that overrides nothing but submit: what the base class promises."""

    def submit(self, order: OrderRow) -> None:
        raise AssertionError("not sent in these tests")


class _PlainPerpBroker(PerpBroker):
    def submit(self, order: OrderRow) -> None:
        raise AssertionError("not sent in these tests")


def test_a_broker_that_does_not_say_its_market_keeps_a_spot_account():
    broker = _PlainBroker(StateStore(":memory:"))
    assert broker.market == "spot" and not broker.rests_orders
    # sized at the fill (paper's way), so the runner records amount 0.0
    assert broker.intent_amount((True, False, False, False), 100.0, 1000.0, 0.0,
                                symbol="BTC/USD") is None
    assert _PlainPerpBroker(StateStore(":memory:")).market == "perp"
    assert CcxtBroker.rests_orders and CcxtBroker.market == "spot"


def test_a_spec_of_another_market_than_the_brokers_is_refused_naming_both(frame):
    spot = make_spec("ma_cross", {"fast": 3, "slow": 8})
    store = StateStore(":memory:")
    with pytest.raises(LiveError, match=r"trades market 'spot' but the broker "
                                        r"\(_PlainPerpBroker\) keeps a perp account"):
        LiveRunner(spot, _PlainPerpBroker(store), store, [])


def test_paper_intents_carry_no_amount_and_the_fill_sizes_them(frame):
    spec = make_spec("ma_cross", {"fast": 3, "slow": 8})
    runner = _runner(spec, PaperBroker, frame)
    decided = []
    for bar in frame_to_bars(frame):
        runner.window.push(bar)
        decided += runner.step(bar)  # the intents as decided at the close
    assert decided and {o.amount for o in decided} == {0.0}
    filled = {o.client_id: o.amount for o in runner.store.orders() if o.status == "filled"}
    assert len(filled) >= len(decided) - 1 and all(a > 0 for a in filled.values())


# -- feeds: one base class ------------------------------------------------------------------
def test_a_plain_iterable_is_a_feed_that_knows_nothing():
    bars = [Bar(0, 1.0, 2.0, 0.5, 1.5, 1.0)]
    feed = as_feed(bars)
    assert isinstance(feed, IterableFeed) and list(feed) == bars
    assert (feed.timeframe, feed.symbol, feed.symbols) == (None, None, None)
    replay = ReplayFeed(synthetic_ohlcv(n_bars=5, seed=1).ohlcv)
    assert as_feed(replay) is replay and replay.timeframe == "1h"


def test_a_feed_of_another_timeframe_is_refused_naming_it(frame):
    spec = make_spec("ma_cross", {"fast": 3, "slow": 8})
    store = StateStore(":memory:")
    feed = IterableFeed(frame_to_bars(frame), name="my 5m bars", timeframe="5m")
    with pytest.raises(LiveError, match="feed my 5m bars has 5m bars but spec 't_ma_cross' "
                                        "trades 1h bars"):
        LiveRunner(spec, PaperBroker(store, spec), store, feed)


def test_the_runner_hands_every_feed_its_stop_request(tmp_path):
    """A waiting feed ends its wait on a stop: the runner sets ``stop_requested`` on any feed
    (no probing for the attribute first)."""
    spec = make_spec("ma_cross", {"fast": 3, "slow": 8})
    store = StateStore(":memory:")
    stop = tmp_path / "stop"
    seen = []

    class Watching(Feed):
        def __iter__(self):
            seen.append(self.stop_requested())
            stop.write_text("stop requested\n")  # the kill switch, while the feed "waits"
            seen.append(self.stop_requested())
            yield from ()

    feed = Watching()
    assert feed.stop_requested is None
    runner = LiveRunner(spec, PaperBroker(store, spec), store, feed, stop_file=stop)
    assert runner.run().stopped_by == "kill_switch"
    assert seen == [False, True]


def test_a_perp_window_refuses_plain_candles_by_type():
    window = SignalWindow(3)
    funding = FundingWindow(3_600_000)
    plain = Bar(0, 1.0, 1.0, 1.0, 1.0, 0.0)
    window.push(plain)
    with pytest.raises(LiveError, match="a perp spec needs a perp feed"):
        funding.push(plain, window)
    perp = PerpBar(0, 1.0, 1.0, 1.0, 1.0, 0.0, funding=((3_600_000, 1e-4),))
    funding.push(perp, window)
    assert funding.events == [(3_600_000, 1e-4)]


# -- named rows -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def state(tmp_path_factory, frame):
    path = tmp_path_factory.mktemp("rows") / "s.db"
    spec = make_spec("ma_cross", {"fast": 3, "slow": 8})
    store = StateStore(path)
    LiveRunner(spec, PaperBroker(store, spec), store, ReplayFeed(frame),
               logger=JsonLogger(io.StringIO())).run()
    yield path, store
    store.close()


def _raw(path, table: str, order: str) -> list[dict]:
    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in db.execute(f"SELECT * FROM {table} ORDER BY {order}")]
    finally:
        db.close()


def test_named_rows_read_the_sql_column_of_their_name(state):
    path, store = state
    checks = [(store.bars(), "bars", "time", BarRow._fields),
              (store.fills(), "fills", "id", FillRow._fields),
              (store.candles(), "candles", "symbol, time", CandleRow._fields),
              (store.orders(), "orders", "bar_time, rowid", ORDER_COLUMNS)]
    for rows, table, order, names in checks:
        raw = _raw(path, table, order)
        assert rows and len(rows) == len(raw), table
        for row, columns in zip(rows, raw, strict=True):
            assert {name: getattr(row, name) for name in names} == \
                {name: columns[name] for name in names}, table


def test_the_status_figures_come_from_the_named_columns(state):
    path, store = state
    raw_bars, raw_fills = _raw(path, "bars", "time"), _raw(path, "fills", "id")
    info = read_status(path)
    assert info["equity"] == raw_bars[-1]["equity"]
    assert info["fills"] == len(raw_fills)
    traded = sum(abs(f["price"] * f["size"]) for f in raw_fills)
    curve = np.array([b["equity"] for b in raw_bars])
    assert traded > 0
    assert info["metrics"]["turnover"] == pytest.approx(traded / curve.mean(), rel=1e-12)
    assert info["metrics"]["fees_paid"] == pytest.approx(sum(f["fee"] for f in raw_fills),
                                                         rel=1e-12)
    assert info["metrics"]["total_return"] == pytest.approx(curve[-1] / curve[0] - 1.0,
                                                            rel=1e-12)


def test_an_order_row_is_built_by_keyword_only():
    with pytest.raises(TypeError):
        OrderRow("cid", 0, "BTC/USD", "signal|0.0|1.0", 1, 0.0, 1.0, "market", None, "new",
                 None, "", 0)
