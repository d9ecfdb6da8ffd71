"""ExchangeFeed (the `--feed exchange` of a live run) against the loopback Kraken server.

Closed candles only, each once, the start-up history flagged warm-up; and a kill switch or
SIGTERM ends a run while the feed waits for the next candle, not an hour later.
"""

from __future__ import annotations

import io
import os
import signal
import threading
import time

import pytest

from quantlib.data import synthetic_ohlcv
from quantlib.live.brokers import PaperBroker
from quantlib.live.exchange_feeds import ExchangeFeed
from quantlib.live.logs import JsonLogger
from quantlib.live.runner import LiveRunner
from quantlib.live.state import StateStore
from tests.live.conftest import make_spec
from tests.support.kraken_server import KrakenServer, make_ccxt_kraken
from tests.support.ready import wait_until

HOUR_MS = 3_600_000


@pytest.fixture
def market():
    df = synthetic_ohlcv(n_bars=60, seed=4).ohlcv
    with KrakenServer(df.iloc[:50], symbol="BTC/USD") as server:
        yield server, df


def _open_ms(df, i: int) -> int:
    return int(df.index[i].value // 1_000_000)


def test_only_closed_candles_each_once_history_flagged_warmup(market):
    server, df = market
    # It is 30 minutes into bar 49: bar 49 is still forming and must not be yielded.
    now = [_open_ms(df, 49) + HOUR_MS // 2]
    feed = ExchangeFeed(make_ccxt_kraken(server), "BTC/USD", "1h", history=10,
                        poll_seconds=0.0, clock=lambda: now[0], max_polls=2)
    bars = []
    for bar in feed:
        bars.append(bar)
        if len(bars) == 11 and now[0] < _open_ms(df, 51):
            # an hour passes: bar 49 closes, bar 50 starts forming (the server serves it)
            server.set_ohlcv(df.iloc[:51], symbol="BTC/USD")
            now[0] += HOUR_MS
    warm = [b for b in bars if b.warmup_only]
    live = [b for b in bars if not b.warmup_only]
    # start-up history: the closed candles that opened at or after now - (history + 2) bars
    # (now is 30 min into bar 49, so from bar 38 on; ccxt drops candles before `since`)
    assert [b.time for b in warm] == [_open_ms(df, i) for i in range(38, 49)]
    # then exactly the bar that closed meanwhile, with the served values
    assert [b.time for b in live] == [_open_ms(df, 49)]
    row = df.iloc[49]
    assert (live[0].open, live[0].high, live[0].low, live[0].close) == (
        row["open"], row["high"], row["low"], row["close"])
    assert len({b.time for b in bars}) == len(bars)


@pytest.mark.parametrize("how", ["kill_switch", "sigterm"])
def test_a_stop_ends_the_wait_for_the_next_candle(market, tmp_path, how):
    server, df = market
    now = _open_ms(df, 49) + HOUR_MS // 2  # no new candle will close during this test
    feed = ExchangeFeed(make_ccxt_kraken(server), "BTC/USD", "1h", history=20,
                        poll_seconds=3600.0, clock=lambda: now)
    spec = make_spec("ma_cross", {"fast": 3, "slow": 10})
    store = StateStore(tmp_path / "s.db")
    stop_file = tmp_path / "s.db.stop"
    runner = LiveRunner(spec, PaperBroker(store, spec), store, feed, stop_file=stop_file,
                        logger=JsonLogger(io.StringIO()))
    requested: list[float] = []

    def stop_once_waiting() -> None:
        # the feed has fetched its history and waits for a candle an hour away: stop it now
        wait_until(lambda: server.requests_for("OHLC"), 120, describe="the feed's first poll")
        requested.append(time.monotonic())
        if how == "kill_switch":
            stop_file.write_text("stop requested\n")
        else:
            os.kill(os.getpid(), signal.SIGTERM)

    stopper = threading.Thread(target=stop_once_waiting, daemon=True)
    stopper.start()
    summary = runner.run()
    returned = time.monotonic()
    stopper.join(120)
    assert summary.stopped_by == ("kill_switch" if how == "kill_switch" else "signal")
    # one poll only: the stop ended the 3600 s wait instead of the next poll
    assert len(server.requests_for("OHLC")) == 1
    waited = returned - requested[0]
    assert waited < 60.0, f"the stop took {waited:.1f} s (poll period 3600 s)"
