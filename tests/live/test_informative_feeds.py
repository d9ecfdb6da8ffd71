"""Feeds of a one-symbol spec whose kind reads other markets (informative inputs).

Replay: the bar times of *any* file, each item holding the candles that exist then (a gap in
one file is not silently dropped for all, as a portfolio's common-times feed would). Exchange
(loopback Kraken): a bar time is yielded once every market has closed it or a later candle; a
market that skipped a time yields the item without it, and the runner then stops with the
backtest's error naming the missing bar (symbol, timeframe, time), never a forward fill.
"""

from __future__ import annotations

import pytest

from quantlib.data import save_ohlcv, synthetic_ohlcv
from quantlib.errors import DataError
from quantlib.live.brokers import PaperBroker
from quantlib.live.feed_factory import make_feed
from quantlib.live.informative_feeds import InformativeExchangeFeed, InformativeReplayFeed
from quantlib.live.logs import JsonLogger
from quantlib.live.runner import LiveRunner
from quantlib.live.state import StateStore
from tests.live.conftest import make_spec
from tests.support.kraken_server import KrakenServer, make_ccxt_kraken

HOUR_MS = 3_600_000
ETH, BTC = "ETH/USD", "BTC/USD"
PARAMS = {"inner_kind": "ma_cross", "inner_params": {"fast": 3, "slow": 8},
          "regime_symbol": BTC, "vol_window": 4, "filter_window": 5}


def _open(df, i: int) -> int:
    return int(df.index[i].value // 1_000_000)


@pytest.fixture(scope="module")
def frames():
    out = {s: synthetic_ohlcv(n_bars=60, seed=k).ohlcv for k, s in ((31, ETH), (32, BTC))}
    for frame in out.values():
        frame.attrs["timeframe"] = "1h"
    return out


def test_replay_items_are_the_union_of_bar_times(frames, tmp_path):
    eth = frames[ETH].drop(frames[ETH].index[5])
    btc = frames[BTC].drop(frames[BTC].index[17])
    files = {ETH: save_ohlcv(eth, tmp_path / "eth.csv"), BTC: save_ohlcv(btc, tmp_path / "btc.csv")}
    feed = make_feed("replay:" + ",".join(f"{s}={p}" for s, p in files.items()), inputs=[BTC])
    assert isinstance(feed, InformativeReplayFeed)
    items = list(feed)
    full = frames[ETH]
    assert [next(iter(it.values())).time for it in items] == [_open(full, i) for i in range(60)]
    assert [sorted(it) for it in items if len(it) < 2] == [[BTC], [ETH]]  # bars 5 and 17
    assert ETH not in items[5] and BTC not in items[17]
    assert [it[ETH].close for it in items if ETH in it] == eth["close"].tolist()
    assert [it[BTC].close for it in items if BTC in it] == btc["close"].tolist()


def _clock(early: int, late: int, n_early: int):
    """A clock that reads ``early`` for its first ``n_early`` calls, then ``late``: the feed's
    start-up poll happens before bars after ``early`` closed, the next ones after."""
    calls = [0]

    def now() -> int:
        calls[0] += 1
        return early if calls[0] <= n_early else late

    return now


def test_exchange_feed_yields_a_skipped_time_without_that_market_and_the_runner_names_it(
        frames, tmp_path):
    eth, btc = frames[ETH], frames[BTC]
    early = _open(eth, 45) + HOUR_MS // 2  # bars up to 44 closed at start-up: warm-up
    late = _open(eth, 52) + HOUR_MS // 2  # then 45..51 closed; BTC never had bar 49
    with KrakenServer(symbol=ETH) as server:
        server.now = late / 1000
        server.set_ohlcv(eth.iloc[:53], symbol=ETH)
        server.set_ohlcv(btc.iloc[:53].drop(btc.index[49]), symbol=BTC)
        # start, then one clock read per market in the first poll
        feed = InformativeExchangeFeed(make_ccxt_kraken(server), [ETH, BTC], "1h", history=20,
                                       poll_seconds=0.0, clock=_clock(early, late, 3),
                                       max_polls=2)
        items = list(feed)
        times = [next(iter(it.values())).time for it in items]
        assert times == sorted(set(times))  # each time once, in order
        assert times[-1] == _open(eth, 51)
        assert [sorted(it) for it in items if len(it) < 2] == [[ETH]]
        assert next(it for it in items if len(it) < 2)[ETH].time == _open(eth, 49)
        assert all(it[ETH].warmup_only == (it[ETH].time <= _open(eth, 44)) for it in items)

        # the runner decides 45..48, then stops at 49 with the backtest's error
        spec = make_spec("regime_filter_cross", PARAMS, symbols=[ETH])
        feed = InformativeExchangeFeed(make_ccxt_kraken(server), [ETH, BTC], "1h", history=20,
                                       poll_seconds=0.0, clock=_clock(early, late, 3),
                                       max_polls=2)
        store = StateStore(tmp_path / "gap.db")
        runner = LiveRunner(spec, PaperBroker(store, spec), store, feed,
                            logger=JsonLogger(open(tmp_path / "log.jsonl", "a")))  # noqa: SIM115
        with pytest.raises(DataError) as error:
            runner.run()
    message = str(error.value)
    assert BTC in message and "1h" in message and str(eth.index[49]) in message
    assert [row.time for row in store.bars()] == [_open(eth, i) for i in range(45, 49)]
    from quantlib.backtest.engine import run_backtest

    with pytest.raises(DataError, match=str(eth.index[49]).replace("+", r"\+")):
        run_backtest("regime_filter_cross", eth.iloc[:52], PARAMS,
                     informative={"regime": btc.iloc[:52].drop(btc.index[49])})


def test_a_portfolio_reading_another_market_is_refused_by_name(frames, tmp_path):
    from quantlib.errors import LiveError
    from quantlib.live.replay_feeds import PortfolioReplayFeed

    spec = make_spec("regime_filter_cross", PARAMS, symbols=[ETH, "SOL/USD"])
    store = StateStore(tmp_path / "p.db")
    feed = PortfolioReplayFeed({ETH: frames[ETH], "SOL/USD": frames[BTC]})
    with pytest.raises(LiveError, match=r"other markets \['BTC/USD'\] run for one-symbol"):
        LiveRunner(spec, PaperBroker(store, spec), store, feed)
