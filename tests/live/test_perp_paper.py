"""PERP PARITY: a perp spec replayed through the paper runner is its backtest.

The independent computation is :func:`quantlib.backtest.perp.run_perp_backtest` (the numba
kernel ``perp_nb`` over the whole history, itself checked against a plain-Python reference
loop in ``tests/backtest/test_perp_reference.py``) with the config built here field by field
from the spec; the runner sees one closed bar at a time (a bounded signal window, funding
known from each bar's close) and keeps the account with the paper perp broker. Every fill
(time, side, price, size, fee), the equity at every bar, funding and liquidations must agree
(prices and sizes exactly; money to a relative 1e-9: the broker adds each funding payment to
a running total, the backtest sums per bar).
"""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from quantlib.backtest.perp import PerpConfig, run_perp_backtest
from quantlib.data.perp import PerpData, load_perp
from quantlib.errors import LiveError
from quantlib.live.brokers.perp_paper import PaperPerpBroker
from quantlib.live.feed_factory import make_feed
from quantlib.live.replay_feeds import PerpReplayFeed, save_perp_replay
from quantlib.live.runner import LiveRunner
from quantlib.live.state import StateStore
from quantlib.live.status_board import read_status
from quantlib.strategy.spec import StrategySpec, save_spec

RTOL = 1e-9


def perp_spec(kind="ma_cross", params=None, *, leverage=20.0, direction="both", size=0.5,
              mmr=0.01, **extra) -> StrategySpec:
    return StrategySpec(
        name=f"perp_{kind}", kind=kind, params=params if params is not None else
        {"fast": 5, "slow": 20}, market="perp", exchange="binanceusdm",
        symbols=["BTC/USDT:USDT"], timeframe="1h",
        execution={"fees": 0.0005, "slippage_bps": 2.0, "direction": direction},
        perp={"leverage": leverage, "maint_margin_rate": mmr, "liquidation_fee": 0.0125},
        risk={"order_size": size, "init_cash": 10_000.0}, **extra)


def config_of(spec: StrategySpec) -> PerpConfig:
    """The backtest's config written out from the spec's fields (not spec.perp_config())."""
    return PerpConfig(init_cash=spec.risk.init_cash, leverage=spec.perp.leverage,
                      maint_margin_rate=spec.perp.maint_margin_rate,
                      liquidation_fee=spec.perp.liquidation_fee, fees=spec.execution.fees,
                      slippage_bps=spec.execution.slippage_bps, size=spec.risk.order_size,
                      direction=spec.execution.direction)


def backtest(spec: StrategySpec, perp: PerpData):
    return run_perp_backtest(spec.kind, perp.ohlcv, spec.params, config_of(spec),
                             funding=perp.funding, mark=perp.mark)


def feed_of(perp: PerpData) -> PerpReplayFeed:
    ms = perp.funding.index.as_unit("ms").asi8
    return PerpReplayFeed(perp.ohlcv, perp.mark, (ms, perp.funding["funding_rate"].to_numpy()))


def replay(spec: StrategySpec, perp: PerpData, store: StateStore | None = None,
           feed=None) -> StateStore:
    store = store or StateStore(":memory:")
    LiveRunner(spec, PaperPerpBroker(store, spec), store, feed or feed_of(perp)).run()
    return store


def assert_parity(store: StateStore, res) -> None:
    fills = res.fills
    times = pd.DatetimeIndex(fills["time"]).as_unit("ms").asi8
    expected = [(int(t), int(s), float(p), float(z)) for t, s, p, z in
                zip(times, fills["side"], fills["price"], fills["size"], strict=True)]
    got = store.fills()
    assert [(t, s, p, z) for _, t, s, p, z, _ in got] == expected
    np.testing.assert_allclose([f.fee for f in got], fills["fee"].to_numpy(), rtol=RTOL, atol=0)
    curve = np.array([row.equity for row in store.bars()])
    np.testing.assert_allclose(curve, res.equity.iloc[:, 0].to_numpy(), rtol=RTOL, atol=0)
    positions = np.array([row.position for row in store.bars()])
    np.testing.assert_array_equal(positions, res.positions.iloc[:, 0].to_numpy())
    funding = float(store.get_meta("funding_net"))
    assert funding == pytest.approx(float(res.metrics["funding_net"].iloc[0]), rel=RTOL)
    liquidations = [o for o in store.orders() if o.order_type == "liquidation"]
    assert len(liquidations) == int(res.metrics["n_liquidations"].iloc[0])


def _trades_both_ways(res) -> None:
    """The case proves something: shorts, flips, funding both ways and a liquidation."""
    trades, fills = res.trades, res.fills
    assert (trades["direction"] < 0).sum() >= 3 and (trades["direction"] > 0).sum() >= 3
    flips = fills.groupby("time")["kind"].agg(tuple)
    assert (flips == ("close", "open")).sum() >= 3
    assert int(res.metrics["n_liquidations"].iloc[0]) >= 1
    paid = res.extras["funding"].iloc[:, 0]
    assert (paid > 0).any() and (paid < 0).any()


@pytest.fixture(scope="module")
def synthetic_perp() -> PerpData:
    return load_perp("sample:bars=900,seed=4")


@pytest.fixture
def real_perp(shared_data) -> PerpData:
    """Real BTC/USDT 1h candles (2022, the LUNA and FTX crashes) with the synthetic mark and
    funding (real funding history is not in the shared data)."""
    from quantlib.data.synthetic import synthetic_funding, synthetic_mark

    ohlcv = shared_data("btc_usdt_1h_2022_2023.csv").iloc[3000:6000]
    ohlcv.attrs["timeframe"] = "1h"
    return PerpData(ohlcv, synthetic_mark(ohlcv, 5), synthetic_funding(ohlcv, 5), "real+synthetic")


def test_parity_synthetic_shorts_flips_funding_liquidation(synthetic_perp):
    spec = perp_spec(leverage=20.0)
    res = backtest(spec, synthetic_perp)
    _trades_both_ways(res)
    assert_parity(replay(spec, synthetic_perp), res)


def test_parity_real_btc_high_leverage(real_perp):
    spec = perp_spec(params={"fast": 8, "slow": 30}, leverage=50.0, mmr=0.005, size=0.3)
    res = backtest(spec, real_perp)
    _trades_both_ways(res)
    assert_parity(replay(spec, real_perp), res)


def test_parity_funding_carry_reads_funding_known_at_each_close(synthetic_perp):
    # the signal itself reads funding: the runner's window must see the same rates as the
    # backtest's with_funding column, and no rate before it is published
    rates = synthetic_perp.funding["funding_rate"]
    spec = perp_spec("funding_carry", {"threshold": float(rates.abs().median()),
                                       "allow_long": True}, leverage=5.0, size=0.8)
    res = backtest(spec, synthetic_perp)
    assert len(res.fills) >= 10 and (res.trades["direction"] < 0).any()
    assert (res.trades["direction"] > 0).any()
    assert_parity(replay(spec, synthetic_perp), res)


@pytest.mark.parametrize("direction", ["longonly", "shortonly"])
def test_parity_one_direction(synthetic_perp, direction):
    spec = perp_spec(leverage=3.0, direction=direction)
    res = backtest(spec, synthetic_perp)
    sides = set(np.sign(res.trades["direction"]))
    assert sides == ({1} if direction == "longonly" else {-1})
    assert_parity(replay(spec, synthetic_perp), res)


def test_parity_from_replay_files_and_status(synthetic_perp, tmp_path):
    # the --feed string of files written by save_perp_replay: CSV candles, mark and funding
    spec = perp_spec(leverage=20.0)
    feed = make_feed(save_perp_replay(synthetic_perp, tmp_path / "replay"))
    assert isinstance(feed, PerpReplayFeed) and feed.timeframe == "1h"
    state = tmp_path / "state.db"
    store = replay(spec, synthetic_perp, StateStore(state), feed)
    assert_parity(store, backtest(spec, synthetic_perp))
    store.close()
    info = read_status(state)["perp"]
    last = synthetic_perp.ohlcv.index[-1]
    assert info["qty"] != 0, "the case should end with an open position"
    # the liquidation price in the status is the rule's formula for the open position
    qty, entry, margin, mmr = info["qty"], info["entry_price"], info["margin"], 0.01
    expected = ((entry - margin / qty) / (1 - mmr) if qty > 0
                else (entry + margin / -qty) / (1 + mmr))
    assert info["liq_price"] == pytest.approx(expected, rel=1e-12)
    assert last is not None


def test_a_restart_continues_from_the_stored_account(synthetic_perp, tmp_path):
    # stop after a number of bars, reopen the state in a new runner: the same run as one piece
    spec = perp_spec(leverage=20.0)
    state = tmp_path / "split.db"
    for max_bars in (311, None):
        store = StateStore(state)
        LiveRunner(spec, PaperPerpBroker(store, spec), store, feed_of(synthetic_perp),
                   max_bars=max_bars).run()
        store.close()
    whole = replay(spec, synthetic_perp, StateStore(tmp_path / "whole.db"))
    split = StateStore(state)
    got, ref = split.snapshot(), whole.snapshot()
    assert got["fills"] == ref["fills"] and got["bars"] == ref["bars"]
    assert got["meta"] == ref["meta"]


def test_perp_spec_refuses_a_spot_feed_and_broker(synthetic_perp):
    from quantlib.live.brokers import PaperBroker
    from quantlib.live.replay_feeds import ReplayFeed

    spec = perp_spec()
    store = StateStore(":memory:")
    with pytest.raises(LiveError, match="market 'perp'.*spot account"):
        LiveRunner(spec, PaperBroker(store, spec), store, feed_of(synthetic_perp))
    runner = LiveRunner(spec, PaperPerpBroker(store, spec), store,
                        ReplayFeed(synthetic_perp.ohlcv))
    with pytest.raises(LiveError, match="perp feed"):
        runner.run()


def test_paper_perp_broker_refuses_a_spot_spec():
    spot = StrategySpec(name="s", kind="ma_cross", symbols=["BTC/USD"])
    with pytest.raises(LiveError, match=r"\$.market is 'spot'"):
        PaperPerpBroker(StateStore(":memory:"), spot)


def test_replay_perp_mark_on_other_bars_is_refused(synthetic_perp):
    with pytest.raises(LiveError, match="mark file .* exactly the bars"):
        PerpReplayFeed(synthetic_perp.ohlcv, synthetic_perp.mark.iloc[:-1])


def test_funding_file_errors_name_the_file_and_row(synthetic_perp, tmp_path):
    from quantlib.errors import DataError
    from quantlib.live.replay_feeds import read_funding_file

    bad = synthetic_perp.funding.copy()
    bad.iloc[3, 0] = 0.5 * 100  # a rate in percent
    bad.index.name = "timestamp"
    path = tmp_path / "funding.csv"
    bad.to_csv(path)
    with pytest.raises(DataError, match=r"funding\.csv.*row 3.*funding_rate"):
        read_funding_file(path)


# -- the trading process ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def _aot_kernels():
    from quantlib import jit

    jit.ensure_built()


def test_trading_process_aot_is_the_backtest(_aot_kernels, synthetic_perp, tmp_path):
    """``quantlib live run --kernels aot --feed replay-perp:...``: the real trading process
    (no pandas, numba or vectorbt loaded) makes the backtest's fills."""
    from tests.live._trader import heavy_modules, run_trader

    spec = perp_spec(leverage=20.0)
    feed = save_perp_replay(synthetic_perp, tmp_path / "replay")
    spec_path = save_spec(spec, tmp_path / "spec.json")
    state = tmp_path / "trader.db"
    done, loaded = run_trader(["live", "run", "--strategy", str(spec_path), "--mode", "paper",
                               "--feed", feed, "--state", str(state), "--kernels", "aot",
                               "--log-file", str(tmp_path / "log.jsonl")], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert heavy_modules(loaded) == [], f"the trading process loaded {heavy_modules(loaded)}"
    assert any(m.startswith("_quantlib_kernels_") for m in loaded)
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    res = backtest(spec, synthetic_perp)
    assert summary["equity"] == pytest.approx(float(res.equity.iloc[-1, 0]), rel=RTOL)
    assert_parity(StateStore(state), res)


def test_drift_report_refuses_a_perp_run(synthetic_perp, tmp_path):
    # the state keeps no mark or funding: a spot backtest of a perp run would be a wrong verdict
    from quantlib.errors import ReportError
    from quantlib.report.live_drift import compute_drift, read_live_run

    state = tmp_path / "perp.db"
    replay(perp_spec(), synthetic_perp, StateStore(state)).close()
    with pytest.raises(ReportError, match="covers spot runs; this run trades market 'perp'"):
        compute_drift(read_live_run(state))


def test_cli_run_and_status_of_a_perp_spec(synthetic_perp, tmp_path):
    from typer.testing import CliRunner

    from quantlib.cli import app

    spec_path = save_spec(perp_spec(leverage=20.0), tmp_path / "perp.json")
    feed = save_perp_replay(synthetic_perp, tmp_path / "replay")
    state = tmp_path / "cli.db"
    base = ["live", "run", "--strategy", str(spec_path), "--mode", "paper", "--kernels", "jit",
            "--log-file", str(tmp_path / "log.jsonl")]
    out = CliRunner().invoke(app, [*base, "--feed", f"replay:{tmp_path / 'replay/candles.csv'}",
                                   "--state", str(tmp_path / "wrong.db")])
    assert out.exit_code == 2
    assert "a perp spec needs --feed exchange or --feed replay-perp:" in out.output
    out = CliRunner().invoke(app, [*base, "--feed", feed, "--state", str(state)])
    assert out.exit_code == 0, out.output
    res = backtest(perp_spec(leverage=20.0), synthetic_perp)
    assert json.loads(out.output.strip().splitlines()[-1])["equity"] == pytest.approx(
        float(res.equity.iloc[-1, 0]), rel=RTOL)
    status = CliRunner().invoke(app, ["live", "status", "--state", str(state)])
    assert status.exit_code == 0, status.output
    shown = json.loads(status.output)
    assert shown["perp"]["qty"] == pytest.approx(float(res.positions.iloc[-1, 0]), rel=1e-12)
    assert shown["perp"]["liq_price"] > 0 and shown["heartbeat"]["perp"]["margin"] > 0


@pytest.mark.parametrize(("key", "value", "named"), [
    ("cash", "nan", "cash"), ("margin", "inf", "margin"), ("position", "nan", "position"),
    ("entry_price", "0.0", "entry_price of the open position")])
def test_a_damaged_perp_account_is_refused_by_name(synthetic_perp, tmp_path, key, value, named):
    spec = perp_spec(leverage=20.0)
    state = tmp_path / "damaged.db"
    store = StateStore(state)
    held = np.flatnonzero(backtest(spec, synthetic_perp).positions.iloc[:, 0].to_numpy())
    LiveRunner(spec, PaperPerpBroker(store, spec), store, feed_of(synthetic_perp),
               max_bars=int(held[0]) + 1).run()
    assert store.get_float("position", 0.0) != 0  # an open position to damage
    with store.transaction():
        store.set_meta(key, value)
    runner = LiveRunner(spec, PaperPerpBroker(store, spec), store, feed_of(synthetic_perp))
    with pytest.raises(LiveError, match=rf"perp account {re.escape(named)}"):
        runner.run()
