"""The runner trades a spec only on bars of the spec's timeframe and market: a replay file's
timeframe is inferred from its bars, its market read from its metadata when it names one;
an exchange feed that cannot serve the spec's candles ends in a message, not a traceback."""

from __future__ import annotations

import io
import json
import socket

import numpy as np
import pytest
from typer.testing import CliRunner

from quantlib.cli import app
from quantlib.data import save_ohlcv, synthetic_ohlcv
from quantlib.data.timeframes import infer_timeframe as pandas_infer_timeframe
from quantlib.errors import LiveError
from quantlib.live.brokers import PaperBroker
from quantlib.live.feeds import infer_timeframe
from quantlib.live.logs import JsonLogger
from quantlib.live.replay_feeds import ReplayFeed
from quantlib.live.runner import LiveRunner
from quantlib.live.state import StateStore
from quantlib.strategy.spec import save_spec
from tests.live._approve import promoted
from tests.live.conftest import make_spec
from tests.support.kraken_server import KrakenServer

SPEC = make_spec("ma_cross", {"fast": 3, "slow": 10})  # 1h, BTC/USD


def _cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


@pytest.mark.parametrize("timeframe", ["1m", "5m", "15m", "1h", "4h", "1d", "1w"])
def test_inferred_timeframe_equals_the_pandas_inference(timeframe):
    index = synthetic_ohlcv(n_bars=40, timeframe=timeframe).ohlcv.index
    index = index.delete([5, 6, 20])  # gaps do not change what the bars are
    times = index.as_unit("ms").asi8
    assert infer_timeframe(times) == pandas_infer_timeframe(index) == timeframe


def test_a_5m_replay_for_a_1h_spec_is_refused(tmp_path):
    five = synthetic_ohlcv(n_bars=80, timeframe="5m", seed=2).ohlcv
    store = StateStore(tmp_path / "s.db")
    with pytest.raises(LiveError, match=r"has 5m bars but spec 't_ma_cross' trades 1h bars"):
        LiveRunner(SPEC, PaperBroker(store, SPEC), store, ReplayFeed(five),
                   logger=JsonLogger(io.StringIO()))
    replay = save_ohlcv(five, tmp_path / "bars.csv")
    out = _cli("live", "run", "--strategy", save_spec(SPEC, tmp_path / "spec.json"),
               "--mode", "paper", "--feed", f"replay:{replay}", "--state", tmp_path / "c.db",
               "--kernels", "jit")
    assert out.exit_code == 2
    assert f"feed {replay} has 5m bars" in out.output and "trades 1h bars" in out.output
    assert store.last_bar is None  # nothing traded


def _parquet(tmp_path, symbol: str):
    frame = synthetic_ohlcv(n_bars=60, seed=2).ohlcv
    frame.attrs.update(source="ccxt", exchange="kraken", symbol=symbol)
    return save_ohlcv(frame, tmp_path / f"{symbol.replace('/', '_')}.parquet")


def test_a_replay_of_another_market_is_refused(tmp_path):
    spec_path = save_spec(SPEC, tmp_path / "spec.json")
    args = ["live", "run", "--strategy", spec_path, "--mode", "paper", "--kernels", "jit"]
    out = _cli(*args, "--feed", f"replay:{_parquet(tmp_path, 'ETH/USD')}",
               "--state", tmp_path / "a.db")
    assert out.exit_code == 2
    assert "is ETH/USD but spec 't_ma_cross' trades BTC/USD" in out.output
    out = _cli(*args, "--feed", f"replay:{_parquet(tmp_path, 'BTC/USD')}",
               "--state", tmp_path / "b.db")
    assert out.exit_code == 0, out.output
    assert json.loads(out.output.strip().splitlines()[-1])["bars_processed"] == 60


def test_an_exchange_without_the_specs_candles_is_a_message(tmp_path, monkeypatch):
    five = synthetic_ohlcv(n_bars=60, timeframe="5m", seed=4).ohlcv
    with KrakenServer(five, symbol="BTC/USD") as server:
        monkeypatch.setenv("QUANTLIB_KRAKEN_API_URL", server.url)
        out = _cli("live", "run", "--strategy", save_spec(SPEC, tmp_path / "spec.json"),
                   "--mode", "paper", "--feed", "exchange", "--state", tmp_path / "x.db",
                   "--kernels", "jit", "--poll-seconds", "0.1")
    assert out.exit_code == 2
    assert "fetch_ohlcv BTC/USD 1h" in out.output and isinstance(out.exception, SystemExit)
    assert not (tmp_path / "x.db").exists()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_live_start_without_network_retries_then_exits_with_one_line(tmp_path, monkeypatch,
                                                                    replay_frame):
    from quantlib.live.brokers.ccxt_broker import CcxtBroker

    replay = save_ohlcv(replay_frame.iloc[:40], tmp_path / "bars.csv")
    spec_path = promoted(SPEC, tmp_path)
    monkeypatch.setenv("QUANTLIB_KRAKEN_API_KEY", "k" * 16)
    monkeypatch.setenv("QUANTLIB_KRAKEN_SECRET", "c2VjcmV0c2VjcmV0")
    monkeypatch.setenv("QUANTLIB_KRAKEN_API_URL", f"http://127.0.0.1:{_closed_port()}")
    log = tmp_path / "live.log"
    out = _cli("live", "run", "--strategy", spec_path, "--mode", "live", "--feed",
               f"replay:{replay}", "--state", tmp_path / "live.db", "--kernels", "jit",
               "--log-file", log)
    assert out.exit_code == 2
    lines = out.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: kraken load_markets: ")
    retries = CcxtBroker.__init__.__kwdefaults__["retries"]
    assert lines[0].endswith(f"after {retries} attempts")
    events = [json.loads(line) for line in log.read_text().splitlines()]
    tries = [e for e in events if e["event"] == "exchange_retry" and e["call"] == "load_markets"]
    assert [e["attempt"] for e in tries] == list(range(1, retries + 1))
    # the back-off doubles between attempts, as in trading (0.2 s, 0.4 s, ...)
    gaps = np.diff([e["ts"] for e in tries])
    backoff = CcxtBroker.__init__.__kwdefaults__["backoff"]
    assert np.all(gaps >= backoff * 2.0 ** np.arange(retries - 1) - 0.01)
    assert not (tmp_path / "live.db").exists()
    assert "c2VjcmV0c2VjcmV0" not in out.output + log.read_text()
