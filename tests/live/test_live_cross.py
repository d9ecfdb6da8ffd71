"""LIVE on the loopback Kraken: a one-symbol spec whose kind reads another market (ETH traded
while BTC's regime allows) decides each bar once, and only after every input's candle closed.

The runner trades through ``CcxtBroker`` (real ccxt signing and parsing) and is fed by
:class:`~quantlib.live.informative_feeds.InformativeExchangeFeed` polling both markets. The server holds
back one market's candle for a bar: the runner must not decide that bar (polls go by, no bar is
written); when the candle is published it decides it exactly once, and its target is the one
the kind computes on the whole history with BTC's data passed (the backtest's computation).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from quantlib.core.registry import get_kind
from quantlib.data import load_ohlcv
from quantlib.live.brokers.ccxt_broker import CcxtBroker
from quantlib.live.feed_factory import make_feed
from quantlib.live.informative_feeds import InformativeExchangeFeed
from quantlib.live.logs import JsonLogger
from quantlib.live.runner import LiveRunner
from quantlib.live.state import StateStore
from tests.live.conftest import make_spec
from tests.support.kraken_server import KrakenServer, make_ccxt_kraken
from tests.support.ready import wait_until

HOUR_MS = 3_600_000
ETH, BTC = "ETH/USD", "BTC/USD"
REGIME = {"vol_window": 12, "filter_window": 48, "allowed_regimes": [0], "min_proba": 0.5}
PARAMS = {"inner_kind": "ma_cross", "inner_params": {"fast": 8, "slow": 30},
          "regime_symbol": BTC, **REGIME}
START = 300  # bars served at start: closed up to START - 2, bar START - 1 forming


@pytest.fixture(scope="module")
def frames():
    from tests.conftest import shared_data_path

    out = {}
    for symbol, name in ((ETH, "eth_usdt_1h_2022_2023.csv"), (BTC, "btc_usdt_1h_2022_2023.csv")):
        frame = load_ohlcv(shared_data_path(name)).iloc[:START + 10]
        frame.attrs["timeframe"] = "1h"
        out[symbol] = frame
    return out


def _open(frame, i: int) -> int:
    return int(frame.index[i].value // 1_000_000)


def _expected_target(frames, i: int) -> float:
    """The kind on ALL bars up to i (ETH) with BTC's passed: the backtest's target at i."""
    kind = get_kind("regime_filter_cross")
    target = kind.signals(frames[ETH].iloc[:i + 1], PARAMS,
                          informative={"regime": frames[BTC].iloc[:i + 1]})
    return float(target[-1])


def _ohlc_polls(server: KrakenServer, symbol: str) -> int:
    pair = {"ETH/USD": "XETHZUSD", "BTC/USD": "XXBTZUSD"}[symbol]
    return sum(r.params.get("pair") == pair for r in server.requests_for("OHLC"))


def test_each_bar_decided_once_after_every_input_candle_closed(frames, tmp_path):
    eth = frames[ETH]
    now = [_open(eth, START - 1) + HOUR_MS // 2]
    spec = make_spec("regime_filter_cross", PARAMS, symbols=[ETH], exchange="kraken",
                     approval={"status": "approved", "by": "t"}, execution={"fees": 0.0})
    state = tmp_path / "live.db"
    stop_file = Path(str(state) + ".stop")
    errors: list[BaseException] = []
    with KrakenServer(symbol=ETH) as server:
        server.now = now[0] / 1000
        for symbol in (ETH, BTC):
            server.set_ohlcv(frames[symbol].iloc[:START], symbol=symbol)
            server.set_price(symbol, float(frames[symbol]["close"].iloc[START - 1]))
        server.set_balance("USD", 10_000.0)
        kind = get_kind("regime_filter_cross")
        history = kind.warmup_bars(kind.validate(PARAMS), "1h") + 2
        feed = make_feed("exchange", exchange=make_ccxt_kraken(server), symbol=ETH,
                         inputs=[BTC], timeframe="1h", history=history, poll_seconds=0.02,
                         clock=lambda: now[0])
        assert isinstance(feed, InformativeExchangeFeed)
        log = JsonLogger(open(tmp_path / "log.jsonl", "a"))  # noqa: SIM115 - closed with the run

        def run() -> None:  # SQLite connections belong to their thread: built in it
            store = StateStore(state, durable=True)
            try:
                LiveRunner(spec, CcxtBroker(store, spec, make_ccxt_kraken(server), logger=log,
                                            backoff=0.01), store, feed, mode="live",
                           stop_file=stop_file, logger=log).run()
            except BaseException as exc:  # noqa: BLE001 - reported by the test below
                errors.append(exc)
            finally:
                store.close()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        wait_until(state.exists, describe="the state file")
        reader = StateStore(state)

        def decided() -> list[int]:
            reader.refresh()
            return [row.time for row in reader.bars()]

        # warm-up history only: no decision yet (the candles closed before the run started)
        wait_until(lambda: _ohlc_polls(server, BTC) >= 3 or errors, describe="start-up polls")
        assert decided() == [] and not errors
        # BTC's regime closes the gate at bar START + 3 (target 1 -> 0): that bar waits for BTC
        late_by_bar = {START - 1: BTC, START: ETH, START + 1: None, START + 2: None,
                       START + 3: BTC}
        for bar, late in late_by_bar.items():
            now[0] += HOUR_MS  # bar `bar` closes; the next one starts forming
            server.now = now[0] / 1000
            for symbol in (ETH, BTC):
                served = bar if symbol == late else bar + 1  # the late one lacks bar `bar`
                server.set_ohlcv(frames[symbol].iloc[:served], symbol=symbol)
            if late is not None:
                polled = _ohlc_polls(server, late)
                wait_until(lambda late=late, polled=polled: _ohlc_polls(server, late)
                           >= polled + 5 or errors, describe=f"{late} polled while late")
                assert decided() == [_open(eth, b) for b in range(START - 1, bar)], \
                    f"bar {bar} was decided before {late}'s candle closed"
                server.set_ohlcv(frames[late].iloc[:bar + 1], symbol=late)
            wait_until(lambda bar=bar: _open(eth, bar) in decided() or errors,
                       describe=f"the decision of bar {bar}")
            assert not errors, errors
        stop_file.write_text("stop")
        thread.join(timeout=120)
        assert not thread.is_alive() and not errors, errors
        assert server.errors == []
        sides = [o["descr"]["type"] for _, o in sorted(server.orders.items(),
                                                         key=lambda kv: kv[1]["opentm"])]
    rows = reader.bars()
    assert [row[0] for row in rows] == [_open(eth, b) for b in late_by_bar]  # each once
    targets = [row[2] for row in rows]
    assert targets == [_expected_target(frames, b) for b in late_by_bar]
    assert targets[0] == 1.0 and targets[-1] == 0.0  # the gate really switched
    assert sides == ["buy", "sell"]  # entered at the first decision, out when BTC said so
    reader.close()


def test_live_run_cli_polls_every_market_the_kind_reads(tmp_path):
    """``quantlib live run --feed exchange`` of an ETH spec gated by BTC builds the informative
    exchange feed: it polls BTC's candles as well as ETH's (a plain feed would poll ETH only
    and the first decision would fail for want of BTC's data), then stops on the kill switch."""
    import os
    import subprocess
    import sys
    import time

    import pandas as pd

    from quantlib.data import synthetic_ohlcv
    from quantlib.strategy.spec import save_spec
    from tests.support.ready import OutputTail

    root = Path(__file__).resolve().parents[2]
    hour = pd.Timestamp(int(time.time()) // 3600 * 3600, unit="s", tz="UTC")
    params = {**PARAMS, "vol_window": 4, "filter_window": 5, "inner_params": {"fast": 3,
                                                                               "slow": 8}}
    spec_path = save_spec(make_spec("regime_filter_cross", params, symbols=[ETH],
                                    exchange="kraken"), tmp_path / "spec.json")
    state = tmp_path / "cli.db"
    with KrakenServer(symbol=ETH) as server:
        for seed, symbol in ((41, ETH), (42, BTC)):
            frame = synthetic_ohlcv(n_bars=80, seed=seed).ohlcv
            frame.index = pd.date_range(end=hour, periods=80, freq="1h", name="timestamp")
            frame.attrs["timeframe"] = "1h"
            server.set_ohlcv(frame, symbol=symbol)  # the last one is forming now
        env = dict(os.environ, PYTHONPATH=str(root), QUANTLIB_KRAKEN_API_URL=server.url)
        proc = subprocess.Popen([sys.executable, "-m", "quantlib.cli", "live", "run",
                                 "--strategy", str(spec_path), "--mode", "paper", "--feed",
                                 "exchange", "--state", str(state), "--poll-seconds", "0.2",
                                 "--kernels", "jit", "--log-file", str(tmp_path / "run.log")],
                                env=env, cwd=root, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        output = OutputTail(proc.stdout)
        try:
            wait_until(lambda: _ohlc_polls(server, BTC) >= 2 and _ohlc_polls(server, ETH) >= 2,
                       300, describe="polls of both markets", process=proc, output=output)
            Path(str(state) + ".stop").write_text("stop")
            assert proc.wait(120) == 0, output()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(30)
    summary = json.loads(output().strip().splitlines()[-1])
    assert summary["stopped_by"] == "kill_switch"
    assert summary["bars_processed"] == 0  # every closed candle was start-up history
