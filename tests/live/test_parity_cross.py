"""PARITY for kinds that read another market: ETH traded only while BTC's regime allows
(``regime_filter_cross``), alone and nested with a 4h trend filter, on real 1h bars.

The paper runner is fed ``--feed replay:ETH/USDT=FILE,BTC/USDT=FILE``: it sees one closed bar
of each market at a time, keeps a window of ``warmup_bars + 1`` bars per market and hands BTC's
window to the kind as its informative input. The independent computation is
:func:`quantlib.backtest.run_backtest` on the whole files (``informative={"regime": btc}``); the
fills must agree exactly, the equity to the last ulps. Also: a multi-timeframe kind on the
real file; a kind reading BTC at 4h (resampled in the runner from BTC's 1h window); a missing
BTC bar stops the runner with the backtest's error (symbol, timeframe, time) instead of a
forward fill.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from quantlib.backtest.engine import run_backtest
from quantlib.core.registry import get_kind
from quantlib.data import load_ohlcv, save_ohlcv
from quantlib.errors import DataError, LiveError
from quantlib.live.brokers import PaperBroker
from quantlib.live.feed_factory import make_feed
from quantlib.live.informative_feeds import InformativeReplayFeed
from quantlib.live.replay_feeds import ReplayFeed
from quantlib.live.runner import LiveRunner
from quantlib.live.state import StateStore
from quantlib.strategy.spec import save_spec
from tests.live._trader import heavy_modules, run_trader
from tests.live.conftest import make_spec
from tests.live.test_parity import (
    CONFIG,
    EQUITY_RTOL,
    _aot_kernels,
    _assert_replay_is_the_backtest,
    _backtest_fills,
)

__all__ = ["_aot_kernels"]  # the session fixture that builds the AOT kernels once

N_BARS = 1200  # of each real file (2022-01-01 on): enough to trade, short enough to replay
REGIME = {"vol_window": 12, "filter_window": 48, "allowed_regimes": [0], "min_proba": 0.5}
CROSS = {"inner_kind": "ma_cross", "inner_params": {"fast": 8, "slow": 30},
         "regime_symbol": "BTC/USDT", **REGIME}
CASES = {
    "cross": ("regime_filter_cross", CROSS),
    # a trend filter around the regime filter: both inputs (4h of ETH, BTC's 1h) reach the kind
    "trend-around-cross": ("htf_trend", {"inner_kind": "regime_filter_cross",
                                         "inner_params": CROSS, "trend_timeframe": "4h",
                                         "trend_window": 12}),
    # and the other way round: the warm-up is the 4h trend's (48 x 4h), not the regime's
    "cross-around-trend": ("regime_filter_cross", {
        **CROSS, "inner_kind": "htf_trend",
        "inner_params": {"inner_kind": "ma_cross", "inner_params": {"fast": 8, "slow": 30},
                         "trend_timeframe": "4h", "trend_kind": "ema", "trend_window": 24}}),
}


@pytest.fixture(scope="module")
def markets(tmp_path_factory):
    """The first N_BARS of ETH and BTC 1h 2022-2023, as frames and as replay files."""
    from tests.conftest import shared_data_path

    folder = tmp_path_factory.mktemp("cross")
    out = {}
    for symbol, name in (("ETH/USDT", "eth_usdt_1h_2022_2023.csv"),
                         ("BTC/USDT", "btc_usdt_1h_2022_2023.csv")):
        frame = load_ohlcv(shared_data_path(name)).iloc[:N_BARS]
        path = save_ohlcv(frame, folder / f"{symbol.split('/')[0].lower()}.csv")
        out[symbol] = (load_ohlcv(path), path)
    return out


def _feed(files: dict) -> str:
    return "replay:" + ",".join(f"{s}={p}" for s, p in files.items())


def _spec(kind: str, params: dict):
    return make_spec(kind, params, symbols=["ETH/USDT"])


def _replay(spec, files: dict, tmp_path, how: str):
    """``(bars processed, final equity, fills, store)`` of a paper replay of ``files``."""
    if how == "in-process":
        store = StateStore(tmp_path / "state.db")
        feed = make_feed(_feed(files), inputs=["BTC/USDT"])
        summary = LiveRunner(spec, PaperBroker(store, spec), store, feed).run()
        bars, equity = summary.bars_processed, summary.equity
    else:  # the real trading process: AOT kernels, no pandas
        state = tmp_path / "trader.db"
        done, loaded = run_trader(["live", "run", "--strategy",
                                   str(save_spec(spec, tmp_path / "spec.json")), "--mode",
                                   "paper", "--feed", _feed(files), "--state", str(state),
                                   "--kernels", "aot", "--log-file", str(tmp_path / "log.jsonl")],
                                  tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        assert heavy_modules(loaded) == [], f"the trading process loaded {heavy_modules(loaded)}"
        summary = json.loads(done.stdout.strip().splitlines()[-1])
        bars, equity = summary["bars_processed"], summary["equity"]
        store = StateStore(state)
    fills = [(t, s, p, z) for _, t, s, p, z, _ in store.fills()]
    return bars, equity, fills, store


# the trading process (a minute per case under load) for the case holding both inputs
RUNS = [(case, "in-process") for case in CASES] + [("trend-around-cross", "trading-process")]


@pytest.mark.parametrize(("case", "how"), RUNS, ids=[f"{c}-{h}" for c, h in RUNS])
def test_cross_asset_paper_replay_matches_backtest(case, how, markets, tmp_path):
    kind, params = CASES[case]
    eth, btc = markets["ETH/USDT"][0], markets["BTC/USDT"][0]
    res = run_backtest(kind, eth, params, CONFIG, informative={"regime": btc})
    expected = _backtest_fills(res)
    assert len(expected) >= 10, "the case must trade to prove anything"
    # the filters must really gate: the plain ma_cross inside trades differently
    plain = run_backtest("ma_cross", eth, CROSS["inner_params"], CONFIG)
    assert _backtest_fills(plain) != expected
    files = {s: markets[s][1] for s in ("ETH/USDT", "BTC/USDT")}
    replayed = _replay(_spec(kind, params), files, tmp_path, how)
    _assert_replay_is_the_backtest(replayed, res, expected, len(eth))


def test_multi_timeframe_paper_replay_matches_backtest_on_real_bars(markets, tmp_path):
    """htf_trend (1h ma_cross under a 1d ema trend) on real ETH bars: the runner's window of
    warmup_bars resamples the same closed daily bars as the backtest."""
    params = {"inner_kind": "ma_cross", "inner_params": {"fast": 8, "slow": 30},
              "trend_timeframe": "1d", "trend_kind": "ema", "trend_window": 5}
    eth, path = markets["ETH/USDT"]
    res = run_backtest("htf_trend", eth, params, CONFIG)
    expected = _backtest_fills(res)
    assert len(expected) >= 10
    spec = make_spec("htf_trend", params, symbols=["ETH/USDT"])
    store = StateStore(tmp_path / "s.db")
    runner = LiveRunner(spec, PaperBroker(store, spec), store, ReplayFeed(path))
    summary = runner.run()
    kind = get_kind("htf_trend")
    assert runner.window.size == kind.warmup_bars(kind.validate(params), "1h") + 1 > 24 * 5
    assert [(t, s, p, z) for _, t, s, p, z, _ in store.fills()] == expected
    assert summary.equity == pytest.approx(float(res.equity.iloc[-1, 0]), rel=EQUITY_RTOL)


def test_a_missing_btc_bar_stops_the_runner_as_it_fails_the_backtest(markets, tmp_path):
    eth = markets["ETH/USDT"][0]
    btc = markets["BTC/USDT"][0].drop(markets["BTC/USDT"][0].index[700])
    with pytest.raises(DataError) as backtest_error:
        run_backtest("regime_filter_cross", eth, CROSS, CONFIG, informative={"regime": btc})
    files = {"ETH/USDT": markets["ETH/USDT"][1],
             "BTC/USDT": save_ohlcv(btc, tmp_path / "btc_gap.csv")}
    spec = _spec("regime_filter_cross", CROSS)
    store = StateStore(tmp_path / "gap.db")
    runner = LiveRunner(spec, PaperBroker(store, spec), store, make_feed(_feed(files),
                                                                         inputs=["BTC/USDT"]))
    with pytest.raises(DataError) as live_error:
        runner.run()
    missing = str(eth.index[700])  # '2022-01-30 04:00:00+00:00'
    for message in (str(backtest_error.value), str(live_error.value)):
        assert "BTC/USDT" in message and "1h" in message and missing in message
    # the runner decided every ETH bar before the gap and none from it on
    assert store.last_bar == int(eth.index[699].value // 1_000_000)


def test_the_feed_must_carry_every_market_the_kind_reads(markets, tmp_path):
    spec = _spec("regime_filter_cross", CROSS)
    store = StateStore(tmp_path / "x.db")
    with pytest.raises(LiveError, match="BTC/USDT.*--feed replay:ETH/USDT=FILE,BTC/USDT=FILE"):
        LiveRunner(spec, PaperBroker(store, spec), store, ReplayFeed(markets["ETH/USDT"][1]))
    wrong = InformativeReplayFeed({"ETH/USDT": markets["ETH/USDT"][1],
                                   "SOL/USDT": markets["BTC/USDT"][1]})
    with pytest.raises(LiveError, match="informative inputs"):
        LiveRunner(spec, PaperBroker(store, spec), store, wrong)


def _btc_4h_gate_kind():
    """A kind reading ANOTHER market at a HIGHER timeframe (no built-in does): ma_cross on the
    traded bars, kept while BTC's last closed 4h close is above its 4h SMA."""
    from quantlib.core.informative import InformativeInput, informative
    from quantlib.core.kinds import sma
    from quantlib.core.registry import Param, StrategyKind

    def signal(bars, p):
        inner = get_kind("ma_cross").signals(bars, {"fast": 8, "slow": 30})
        btc = informative(bars, "btc4h")
        with np.errstate(invalid="ignore"):
            up = btc.at_base((btc.bars.close > sma(btc.bars, p["window"])).astype(float))
        return inner * np.nan_to_num(up, nan=0.0)

    return StrategyKind(
        "test_btc_4h_gate", params=(Param("window", int, 10, low=2, high=100),),
        signal=signal, warmup=lambda p: 29, inputs="bars",
        informative=lambda p: (InformativeInput("btc4h", timeframe="4h", symbol="BTC/USDT",
                                                history=p["window"]),))


def test_another_markets_higher_timeframe_input_paper_replay_matches_backtest(
        markets, tmp_path, monkeypatch):
    """BTC's 4h bars, resampled in the runner from BTC's 1h window, gate ETH's 1h trades."""
    from quantlib.core import registry

    kind = _btc_4h_gate_kind()
    get_kind("ma_cross")  # the built-ins first, then this kind for this test only
    monkeypatch.setitem(registry._REGISTRY, kind.name, kind)
    params = {"window": 10}
    eth, btc = markets["ETH/USDT"][0], markets["BTC/USDT"][0]
    res = run_backtest(kind.name, eth, params, CONFIG, informative={"btc4h": btc})
    expected = _backtest_fills(res)
    assert len(expected) >= 10
    plain = run_backtest("ma_cross", eth, {"fast": 8, "slow": 30}, CONFIG)
    assert _backtest_fills(plain) != expected  # the gate changes the trades
    files = {s: markets[s][1] for s in ("ETH/USDT", "BTC/USDT")}
    store = StateStore(tmp_path / "s.db")
    spec = _spec(kind.name, params)
    runner = LiveRunner(spec, PaperBroker(store, spec), store,
                        make_feed(_feed(files), inputs=["BTC/USDT"]))
    summary = runner.run()
    assert runner.windows["BTC/USDT"].size == kind.warmup_bars(params, "1h") + 1 == (11 * 4 - 2) + 1
    assert [(t, s, p, z) for _, t, s, p, z, _ in store.fills()] == expected
    assert summary.equity == pytest.approx(float(res.equity.iloc[-1, 0]), rel=EQUITY_RTOL)
