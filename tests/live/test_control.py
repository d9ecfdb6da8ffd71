"""Runner control: one step per closed bar, one transaction per bar, kill switch, SIGTERM,
risk halts, live refuses drafts, status/heartbeat, JSON logs."""

from __future__ import annotations

import io
import json
import os
import signal
import threading

import numpy as np
import pytest

from quantlib.errors import LiveError
from quantlib.live.brokers import PaperBroker, client_order_id
from quantlib.live.feeds import frame_to_bars
from quantlib.live.logs import JsonLogger
from quantlib.live.replay_feeds import ReplayFeed
from quantlib.live.risk import RiskManager
from quantlib.live.runner import LiveRunner
from quantlib.live.state import StateStore
from quantlib.live.status_board import read_status
from quantlib.strategy.spec import RiskSpec
from tests.live.conftest import make_spec


def _runner(spec, tmp_path, feed, **kw):
    store = StateStore(tmp_path / "s.db")
    log = io.StringIO()
    return LiveRunner(spec, PaperBroker(store, spec), store, feed, logger=JsonLogger(log),
                      **kw), store, log


def test_live_mode_refuses_unapproved_spec(tmp_path, replay_frame):
    with pytest.raises(LiveError, match="only approved"):
        _runner(make_spec("ma_cross"), tmp_path, ReplayFeed(replay_frame), mode="live")


def test_intents_are_committed_before_the_broker_sees_them(tmp_path, replay_frame):
    spec = make_spec("ma_cross", {"fast": 3, "slow": 10})
    runner, store, _ = _runner(spec, tmp_path, ReplayFeed(replay_frame))
    seen = []
    original = runner.broker.submit

    def spy(order):  # a second connection sees the committed intent and the bar
        other = StateStore(tmp_path / "s.db")
        seen.append((other.get_order(order.client_id).status, other.last_bar == order.bar_time))
        other.close()
        original(order)

    runner.broker.submit = spy
    runner.run()
    assert seen and all(s == ("new", True) for s in seen)


def test_one_step_per_bar_and_restart_resumes(tmp_path, replay_frame):
    spec = make_spec("ma_cross", {"fast": 3, "slow": 10})
    runner, store, _ = _runner(spec, tmp_path, ReplayFeed(replay_frame), max_bars=100)
    assert runner.run().stopped_by == "max_bars"
    assert len(store.bars()) == 100
    again, store2, _ = _runner(spec, tmp_path, ReplayFeed(replay_frame))
    summary = again.run()
    assert summary.bars_processed == len(replay_frame) - 100
    times = [b.time for b in store2.bars()]
    assert times == sorted(set(times)) and len(times) == len(replay_frame)
    # Client ids are a pure function of (strategy, symbol, bar time, intent).
    for o in store2.orders():
        assert o.client_id == client_order_id(spec.name, spec.symbol, o.bar_time, o.intent)


def test_state_of_another_spec_is_refused(tmp_path, replay_frame):
    runner, _, _ = _runner(make_spec("ma_cross", {"fast": 3, "slow": 10}), tmp_path,
                           ReplayFeed(replay_frame), max_bars=5)
    runner.run()
    with pytest.raises(LiveError, match="different spec"):
        _runner(make_spec("ma_cross", {"fast": 4, "slow": 10}), tmp_path, ReplayFeed(replay_frame))


def test_kill_switch_file_and_cli_stop(tmp_path, replay_frame):
    from typer.testing import CliRunner

    from quantlib.cli import app

    spec = make_spec("ma_cross", {"fast": 3, "slow": 10})
    bars = frame_to_bars(replay_frame)
    state = tmp_path / "s.db"

    def feed():
        for i, bar in enumerate(bars):
            if i == 50:
                CliRunner().invoke(app, ["live", "stop", "--state", str(state), "--timeout", "0"])
            yield bar

    runner, store, _ = _runner(spec, tmp_path, feed(), stop_file=str(state) + ".stop")
    summary = runner.run()
    assert summary.stopped_by == "kill_switch" and summary.bars_processed == 50
    with pytest.raises(LiveError, match="kill switch"):
        runner.run()  # refuses to start while the kill switch is engaged


def test_sigterm_finishes_the_step_then_exits(tmp_path, replay_frame):
    spec = make_spec("ma_cross", {"fast": 3, "slow": 10})
    bars = frame_to_bars(replay_frame)

    def feed():
        for i, bar in enumerate(bars):
            if i == 30:
                os.kill(os.getpid(), signal.SIGTERM)
            yield bar

    assert threading.current_thread() is threading.main_thread()
    runner, store, log = _runner(spec, tmp_path, feed(), status_file=tmp_path / "status.json")
    summary = runner.run()
    assert summary.stopped_by == "signal" and summary.bars_processed == 30
    assert store.last_bar == bars[29].time
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["last_bar"] == bars[29].time and status["health"] == "signal"
    records = [json.loads(line) for line in log.getvalue().splitlines()]
    assert {"ts", "level", "event"} <= set(records[0]) and records[-1]["event"] == "stop"
    info = read_status(tmp_path / "s.db")
    assert info["last_bar"].startswith(str(replay_frame.index[29].date()))


def test_risk_manager_halts_on_drawdown_and_daily_loss():
    # Independent arithmetic: peak 120 -> 100 is a 16.67% drawdown.
    store = StateStore(":memory:")
    rm = RiskManager(RiskSpec(max_drawdown=0.15), store)
    hour = 3_600_000
    assert rm.check(0, 100.0) is None and rm.check(hour, 120.0) is None
    assert rm.check(2 * hour, 103.0) is None  # 14.2% < 15%
    assert "16.67%" in rm.check(3 * hour, 100.0) and rm.halted
    daily = RiskManager(RiskSpec(max_daily_loss=0.05), StateStore(":memory:"))
    day = 86_400_000
    assert daily.check(day, 100.0) is None and daily.check(day + hour, 96.0) is None
    assert daily.check(2 * day, 91.0) is None  # new day: 91 is the day's start
    assert "5.49%" in daily.check(2 * day + hour, 86.0)


def test_halt_flattens_when_configured(tmp_path, replay_frame):
    spec = make_spec("ma_cross", {"fast": 3, "slow": 10},
                     risk={"max_drawdown": 0.005, "flatten_on_halt": True})
    runner, store, log = _runner(spec, tmp_path, ReplayFeed(replay_frame))
    runner.run()
    assert store.get_meta("halted")
    assert '"event": "risk_halt"' in log.getvalue()
    halted_at = next(b[0] for b in store.bars() if b[2] == 0.0 and b[0] > store.orders()[0].bar_time)
    assert store.get_float("position", 1.0) == 0.0
    assert all(b[2] == 0.0 for b in store.bars() if b[0] > halted_at)
    assert np.isfinite(store.bars()[-1].equity)


def test_second_runner_on_the_same_state_is_refused(tmp_path, replay_frame):
    # A second runner on one state file could trade the same bars twice; the first one holds
    # an exclusive lock for its whole run, and the second refuses to start.
    import fcntl

    spec = make_spec("ma_cross", {"fast": 3, "slow": 10})
    first, store, _ = _runner(spec, tmp_path, ReplayFeed(replay_frame), max_bars=5)
    with open(str(tmp_path / "s.db") + ".lock", "a+") as held:  # as a running runner holds it
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(LiveError, match=r"s\.db is in use by a running runner"):
            first.run()
    assert store.last_bar is None  # it refused before processing anything
    assert first.run().bars_processed == 5  # lock released: it runs
    with open(str(tmp_path / "s.db") + ".lock") as fh:  # and it left its pid for diagnosis
        assert fh.read().strip() == f"pid {os.getpid()}"


def test_meta_cache_never_serves_a_rolled_back_value(tmp_path):
    store = StateStore(tmp_path / "m.db")
    with store.transaction():
        store.set_meta("cash", "100.0")
    with pytest.raises(RuntimeError), store.transaction():
        store.set_meta("cash", "50.0")
        raise RuntimeError("crash inside the bar's transaction")
    assert store.get_meta("cash") == "100.0"
    other = StateStore(tmp_path / "m.db")
    assert other.get_meta("cash") == "100.0"


def test_status_reports_the_runs_metrics_from_the_shared_metrics_function(tmp_path, replay_frame):
    spec = make_spec("ma_cross", {"fast": 3, "slow": 10})
    runner, store, _ = _runner(spec, tmp_path, frame_to_bars(replay_frame))
    runner.run()
    bars, fills = store.bars(), store.fills()
    assert len(fills) >= 4
    metrics = read_status(tmp_path / "s.db")["metrics"]
    # independent arithmetic on the stored equity curve and fills
    equity = np.array([b.equity for b in bars])
    assert metrics["total_return"] == pytest.approx(equity[-1] / equity[0] - 1, rel=1e-12)
    drawdown = equity / np.maximum.accumulate(equity) - 1
    assert metrics["max_drawdown"] == pytest.approx(drawdown.min(), rel=1e-12)
    assert metrics["fees_paid"] == pytest.approx(sum(f.fee for f in fills), rel=1e-12)
    position = np.array([b.position for b in bars])
    assert metrics["exposure"] == pytest.approx(np.mean(position != 0), abs=1e-12)
