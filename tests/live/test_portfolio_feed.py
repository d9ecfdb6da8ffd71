"""Portfolio feeds: replay files aligned like the backtest's frames, the exchange feed waits for
every market's closed candle (loopback Kraken), and the --feed form of a portfolio."""

from __future__ import annotations

import pytest

from quantlib.data import save_ohlcv, synthetic_ohlcv
from quantlib.errors import LiveError
from quantlib.live.exchange_feeds import PortfolioExchangeFeed
from quantlib.live.replay_feeds import PortfolioReplayFeed, parse_replay
from tests.support.kraken_server import KrakenServer, make_ccxt_kraken

HOUR_MS = 3_600_000
SYMBOLS = ["BTC/USD", "ETH/USD", "SOL/USD"]


def _open_ms(df, i: int) -> int:
    return int(df.index[i].value // 1_000_000)


def test_exchange_feed_waits_for_every_market_and_skips_a_missing_bar():
    frames = {s: synthetic_ohlcv(n_bars=60, seed=k).ohlcv for k, s in enumerate(SYMBOLS, 4)}
    df = frames["BTC/USD"]
    now = [_open_ms(df, 49) + HOUR_MS // 2]
    with KrakenServer(symbol="BTC/USD") as server:
        server.now = now[0] / 1000
        for s in SYMBOLS:
            server.set_ohlcv(frames[s].iloc[:50], symbol=s)
        feed = PortfolioExchangeFeed(make_ccxt_kraken(server), SYMBOLS, "1h", history=10,
                                     poll_seconds=0.0, clock=lambda: now[0], max_polls=2)
        phase = {"name": "warmup", "polls": 0, "seen_at_publish": None}
        items = []

        def between_polls() -> bool:
            if phase["name"] == "lagging":
                phase["polls"] += 1
                if phase["polls"] == 3:  # ETH publishes its bar 49 two polls late
                    phase["seen_at_publish"] = len(items)
                    server.set_ohlcv(frames["ETH/USD"].iloc[:51], symbol="ETH/USD")
                    phase["name"] = "published"
            return False

        feed.stop_requested = between_polls
        for item in feed:
            items.append(item)
            if len(items) == 11:  # warm-up done; an hour passes
                now[0] += HOUR_MS
                server.now = now[0] / 1000
                for s in ("BTC/USD", "SOL/USD"):
                    server.set_ohlcv(frames[s].iloc[:51], symbol=s)
                # ETH has no bar 49 yet (its bar 48 is the last it serves)
                server.set_ohlcv(frames["ETH/USD"].iloc[:49], symbol="ETH/USD")
                phase["name"] = "lagging"
    assert all(list(item) == SYMBOLS for item in items)
    assert all(len({bar.time for bar in item.values()}) == 1 for item in items)
    times = [item["BTC/USD"].time for item in items]
    assert times == [_open_ms(df, i) for i in range(38, 50)]
    assert [item["BTC/USD"].warmup_only for item in items] == [True] * 11 + [False]
    # bar 49 came only once ETH had it, not when BTC and SOL had closed it
    assert phase["seen_at_publish"] == 11
    for s in SYMBOLS:  # the values each market served
        assert items[-1][s].close == pytest.approx(float(frames[s]["close"].iloc[49]))


def test_replay_feed_aligns_on_common_bars_and_parses_the_cli_form(tmp_path):
    frames = {s: synthetic_ohlcv(n_bars=40, seed=k).ohlcv for k, s in enumerate(SYMBOLS, 1)}
    frames["ETH/USD"] = frames["ETH/USD"].drop(frames["ETH/USD"].index[[5, 17]])
    files = {s: save_ohlcv(f, tmp_path / f"{s.split('/')[0]}.csv") for s, f in frames.items()}
    feed_arg = "replay:" + ",".join(f"{s}={p}" for s, p in files.items())
    assert parse_replay(feed_arg) == {s: str(p) for s, p in files.items()}
    items = list(PortfolioReplayFeed(parse_replay(feed_arg)))
    from quantlib.backtest.engine import as_frames

    aligned = as_frames(frames)
    assert len(items) == len(aligned["BTC/USD"]) == 38
    for s in SYMBOLS:
        assert [it[s].close for it in items] == aligned[s]["close"].tolist()


@pytest.mark.parametrize("bad", ["replay:BTC/USD=a.csv,ETH/USD", "replay:BTC/USD=a.csv,BTC/USD=b.csv"])
def test_bad_portfolio_feed_forms_are_refused(bad):
    with pytest.raises(LiveError, match="--feed"):
        parse_replay(bad)


def test_portfolio_spec_refuses_a_one_market_feed_and_status_lists_every_position(tmp_path):
    from typer.testing import CliRunner

    from quantlib.cli import app
    from quantlib.live.brokers import PaperBroker
    from quantlib.live.replay_feeds import ReplayFeed
    from quantlib.live.runner import LiveRunner
    from quantlib.live.state import StateStore
    from tests.live.conftest import make_spec

    frames = {s: synthetic_ohlcv(n_bars=120, seed=k).ohlcv for k, s in enumerate(SYMBOLS, 7)}
    files = {s: save_ohlcv(f, tmp_path / f"{s.split('/')[0]}.csv") for s, f in frames.items()}
    spec = make_spec("ma_cross", {"fast": 3, "slow": 10}, symbols=SYMBOLS,
                     risk={"order_size": 0.3})
    store = StateStore(tmp_path / "p.db")
    with pytest.raises(LiveError, match="one market per symbol"):
        LiveRunner(spec, PaperBroker(store, spec), store, ReplayFeed(files["BTC/USD"]))
    swapped = PortfolioReplayFeed(dict(reversed(list(files.items()))))
    with pytest.raises(LiveError, match="same order"):
        LiveRunner(spec, PaperBroker(store, spec), store, swapped)
    LiveRunner(spec, PaperBroker(store, spec), store, PortfolioReplayFeed(files)).run()
    held = {s: store.get_float("position" if s == SYMBOLS[0] else f"position|{s}", 0.0)
            for s in SYMBOLS}
    store.close()
    out = CliRunner().invoke(app, ["live", "status", "--state", str(tmp_path / "p.db")])
    assert out.exit_code == 0, out.output
    import json

    shown = json.loads(out.output)["positions"]
    assert list(shown) == SYMBOLS
    assert {s: shown[s]["position"] for s in SYMBOLS} == held
    # the positions the backtest of the same portfolio ends with
    from quantlib.backtest.engine import run_backtest
    from quantlib.core.config import BacktestConfig

    res = run_backtest("ma_cross", frames, {"fast": 3, "slow": 10},
                       BacktestConfig(size=0.3, fees=0.001, slippage_bps=5.0))
    signed = res.fills["size"] * res.fills["side"]
    final = signed.groupby(res.fills["symbol"]).sum()
    assert sum(abs(final.get(s, 0.0)) > 0 for s in SYMBOLS) >= 1
    for s in SYMBOLS:
        assert held[s] == pytest.approx(final.get(s, 0.0), rel=1e-9, abs=1e-12)
