"""Drift report: a paper replay matches its backtest exactly; a venue that slips more than the
spec models shows the difference per fill and a DIVERGED verdict; the state is read read-only."""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from quantlib.backtest.engine import run_backtest
from quantlib.data import synthetic_ohlcv
from quantlib.errors import ReportError
from quantlib.live.feeds import Feed, frame_to_bars
from quantlib.live.logs import JsonLogger
from quantlib.live.runner import LiveRunner
from quantlib.live.state import StateStore
from quantlib.report.live_drift import compute_drift, read_live_run
from tests.live.conftest import make_spec, paper_replay

EXTRA_BPS = 50.0


@pytest.fixture(scope="module")
def frame():
    return synthetic_ohlcv(n_bars=240, seed=3).ohlcv


@pytest.fixture(scope="module")
def paper_state(tmp_path_factory, frame):
    path = tmp_path_factory.mktemp("paper") / "paper.db"
    spec = make_spec("ma_cross", {"fast": 3, "slow": 10})
    store = StateStore(path)
    paper_replay(spec, store, frame)
    store.close()
    return path, spec


class _PricedFeed(Feed):
    """Replay bars; before bar t is handed over, the loopback exchange's price becomes bar
    t+1's open: the intent decided at t's close fills where the backtest fills it."""

    timeframe, symbol = "1h", "BTC/USD"

    def __init__(self, frame, server):
        self.bars, self.server = frame_to_bars(frame), server

    def __iter__(self):
        for i, bar in enumerate(self.bars):
            if i + 1 < len(self.bars):
                self.server.set_price("BTC/USD", self.bars[i + 1].open)
            yield bar


@pytest.fixture(scope="module")
def slipped_state(tmp_path_factory, frame):
    from quantlib.live.brokers.ccxt_broker import CcxtBroker
    from tests.support.kraken_server import KrakenServer, make_ccxt_kraken

    path = tmp_path_factory.mktemp("slipped") / "live.db"
    spec = make_spec("ma_cross", {"fast": 3, "slow": 10}, approval={"status": "approved"},
                     execution={"fees": 0.0, "slippage_bps": 0.0},
                     risk={"order_size": 0.5})  # room for the slippage: no order refused
    with KrakenServer(frame.iloc[:50], symbol="BTC/USD",
                      extra_slippage_bps=EXTRA_BPS) as server:
        server.set_balance("USD", 10_000.0)
        store = StateStore(path)
        broker = CcxtBroker(store, spec, make_ccxt_kraken(server, timeout=5000),
                            logger=JsonLogger(io.StringIO()), backoff=0.01)
        LiveRunner(spec, broker, store, _PricedFeed(frame, server), mode="live",
                   logger=JsonLogger(io.StringIO())).run()
        store.close()
    return path, spec


def _file_digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_paper_replay_shows_zero_divergence(paper_state, frame):
    path, spec = paper_state
    drift = compute_drift(read_live_run(path))
    # the candles kept in the state are the replayed bars: the same backtest as on the file
    direct = run_backtest(spec.kind, frame, dict(spec.params), spec.backtest_config())
    np.testing.assert_array_equal(drift.backtest_equity.to_numpy(),
                                  direct.equity.iloc[:, 0].to_numpy())
    assert drift.max_gap == 0.0 and not drift.diverged
    assert len(drift.fills) == len(direct.fills) > 5 and drift.fills["match"].all()
    assert drift.verdict.startswith("MATCHES")
    assert drift.time_in_market["live"] == drift.time_in_market["backtest"] > 0
    # paper fills slip exactly what the spec models: 5 bps from the next bar's open
    costs = drift.costs.dropna(subset=["slippage_bps"])
    assert len(costs) == len(drift.fills)
    np.testing.assert_allclose(costs["slippage_bps"], 5.0, rtol=1e-6)
    np.testing.assert_allclose(costs["fee_rate"], 0.001, rtol=1e-9)


def test_extra_slippage_at_the_venue_shows_per_fill_and_in_the_verdict(slipped_state, frame):
    path, _ = slipped_state
    drift = compute_drift(read_live_run(path))
    costs = drift.costs
    assert len(costs) >= 5
    # independent: the exchange filled at the next open moved EXTRA_BPS against us
    np.testing.assert_allclose(costs["slippage_bps"], EXTRA_BPS, rtol=1e-6)
    assert (costs["modelled_slippage_bps"] == 0.0).all()
    opens = frame["open"]
    for fill in costs.itertuples():
        assert fill.reference_open in set(opens.to_numpy())
    assert drift.diverged and drift.verdict.startswith("DIVERGED")
    assert drift.max_gap > drift.tolerance
    assert f"{drift.max_gap:.4%}" in drift.verdict
    # the live curve is below: every buy paid more, every sell got less
    assert drift.live_equity.iloc[-1] < drift.backtest_equity.iloc[-1]
    assert not drift.fills["match"].any()


def test_the_command_writes_the_page_lists_it_and_exits_by_verdict(paper_state, slipped_state,
                                                                  tmp_path):
    from quantlib.cli import app

    out = tmp_path / "reports"
    cli = CliRunner()
    good = cli.invoke(app, ["live", "report", "--state", str(paper_state[0]), "--out", str(out)])
    assert good.exit_code == 0, good.output
    bad = cli.invoke(app, ["live", "report", "--state", str(slipped_state[0]), "--out", str(out)])
    assert bad.exit_code == 1, bad.output
    assert "DIVERGED" in bad.output
    page = (out / "live" / "live.db.html").read_text()
    summary = json.loads((out / "live" / "live.db.json").read_text())
    assert summary["diverged"] and summary["verdict"] in page.replace("&#x27;", "'")
    assert "plotly-graph-div" in page and "cdn." not in page  # offline
    index = (out / "index.html").read_text()
    assert "<h2 id='live'>Live</h2>" in index
    assert "live/live.db.html" in index and "live/paper.db.html" in index
    assert index.count("MATCHES</span>") == 1 and index.count("DIVERGED</span>") == 1


def test_live_and_backtest_metrics_beside_buy_and_hold(paper_state, slipped_state, frame,
                                                      tmp_path):
    """Both curves' metrics against holding the symbol over the same bars: closed forms from
    the replayed closes, beta and alpha by empyrical on the bar returns."""
    empyrical = pytest.importorskip("empyrical")
    drift = compute_drift(read_live_run(paper_state[0]))
    m = drift.metrics
    assert list(m.index) == ["live", "backtest"]
    close = frame["close"].loc[drift.live_equity.index]
    hold = close.iloc[-1] / close.iloc[0] - 1.0
    assert m["benchmark_return"].tolist() == pytest.approx([hold, hold], rel=1e-12)
    live = drift.live_equity
    assert m.loc["live", "total_return"] == pytest.approx(live.iloc[-1] / live.iloc[0] - 1.0)
    assert m.loc["live", "excess_return"] == pytest.approx(
        live.iloc[-1] / live.iloc[0] - 1.0 - hold, rel=1e-12)
    r, b = live.pct_change().iloc[1:].to_numpy(), close.pct_change().iloc[1:].to_numpy()
    assert m.loc["live", "beta"] == pytest.approx(empyrical.beta(r, b), rel=1e-9)
    hours = 365 * 24
    assert (1 + m.loc["live", "alpha"] / hours) ** hours - 1 == pytest.approx(
        empyrical.alpha(r, b, annualization=hours), rel=1e-7)
    # the slipped run's live row is worse than its backtest against the same holder
    slipped = compute_drift(read_live_run(slipped_state[0])).metrics
    assert slipped.loc["live", "excess_return"] < slipped.loc["backtest", "excess_return"]
    # the page shows the table formatted, the index the live excess return
    from quantlib.report.format import format_metric
    from quantlib.report.live_drift import write_drift_report

    page = write_drift_report(paper_state[0], tmp_path).read_text()
    assert "quantlib-drift-metrics" in page
    assert format_metric("benchmark_return", hold) in page
    index = (tmp_path / "index.html").read_text()
    assert "live vs buy &amp; hold" in index
    assert format_metric("excess_return", m.loc["live", "excess_return"]) in index


def test_the_state_is_read_read_only_while_a_runner_writes(paper_state, tmp_path):
    import shutil

    path = tmp_path / "busy.db"
    shutil.copy(paper_state[0], path)
    writer = sqlite3.connect(path)
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("BEGIN IMMEDIATE")  # a runner in the middle of a bar's transaction
    writer.execute("INSERT INTO meta VALUES ('in_flight', '1')")
    before = _file_digest(path)
    run = read_live_run(path)
    assert len(run.bars) == len(run.candles) == 240 and "in_flight" not in run.meta
    assert _file_digest(path) == before  # the reader wrote nothing
    writer.rollback()
    writer.close()


def test_what_cannot_be_reported_is_refused_by_name(tmp_path, paper_state):
    with pytest.raises(ReportError, match="no such file"):
        read_live_run(tmp_path / "missing.db")
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE x (a)").connection.commit()
    with pytest.raises(ReportError, match="not a quantlib state file"):
        read_live_run(other)
    import shutil

    old = tmp_path / "old.db"
    shutil.copy(paper_state[0], old)
    con = sqlite3.connect(old)
    con.execute("DELETE FROM meta WHERE key = 'spec'")
    con.commit()
    con.close()
    with pytest.raises(ReportError, match="holds no spec"):
        read_live_run(old)
    with pytest.raises(ReportError, match="--tolerance"):
        compute_drift(read_live_run(paper_state[0]), tolerance=0.0)


def test_restarts_and_halts_are_kept_for_the_time_line(tmp_path, frame):
    spec = make_spec("ma_cross", {"fast": 3, "slow": 10}, risk={"max_drawdown": 0.01})
    path = tmp_path / "s.db"
    for part in (frame.iloc[:100], frame):  # a stop, then a restart that resumes
        store = StateStore(path)
        paper_replay(spec, store, part)
        store.close()
    run = read_live_run(path)
    assert [s["resume_after"] for s in run.starts] == [
        None, int(frame.index[99].value // 1_000_000)]
    halted = int(run.meta["halted_bar"])
    # the halt bar is the first bar whose equity fell 1 % below the running peak
    curve = run.bars["equity"]
    first = curve.index[(1 - curve / curve.cummax()) > 0.01][0]
    assert pd.Timestamp(halted, unit="ms", tz="UTC") == first
