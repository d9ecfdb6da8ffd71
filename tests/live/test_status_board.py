"""`quantlib live status --dir`: one line per run; exit 1 when a run is stale or halted."""

from __future__ import annotations

import time

import pandas as pd
import pytest
from typer.testing import CliRunner

from quantlib.cli import app
from quantlib.data import synthetic_ohlcv
from quantlib.live.brokers import PaperBroker
from quantlib.live.cli import status_file_for
from quantlib.live.replay_feeds import ReplayFeed
from quantlib.live.runner import LiveRunner
from quantlib.live.state import StateStore
from quantlib.live.status_board import format_age, scan
from tests.live.conftest import make_spec


def _recent_frame(n_bars: int = 60, closed_ago: float = 600.0) -> pd.DataFrame:
    """Hourly bars whose last candle closed ``closed_ago`` seconds ago."""
    frame = synthetic_ohlcv(n_bars=n_bars, seed=11).ohlcv
    last_close = pd.Timestamp(time.time() - closed_ago, unit="s", tz="UTC")
    shift = last_close - (frame.index[-1] + pd.Timedelta(hours=1))
    frame.index = frame.index + shift
    frame.index.name = "timestamp"
    return frame


def _run(folder, name, frame, **spec_kw):
    spec = make_spec("ma_cross", {"fast": 3, "slow": 10}, name=name, **spec_kw)
    store = StateStore(folder / f"{name}.db")
    LiveRunner(spec, PaperBroker(store, spec), store, ReplayFeed(frame),
               status_file=status_file_for(folder / f"{name}.db")).run()
    bars = store.bars()
    store.close()
    return bars


@pytest.fixture
def runs(tmp_path):
    healthy, stale, halted = (tmp_path / d for d in ("healthy", "stale", "halted"))
    for folder in (healthy, stale, halted):
        folder.mkdir()
    bars = {"fresh": _run(healthy, "fresh", _recent_frame())}
    bars["old"] = _run(stale, "old", _recent_frame(closed_ago=3 * 3600.0))
    bars["dd"] = _run(halted, "dd", _recent_frame(n_bars=200),
                      risk={"max_drawdown": 0.002})
    (healthy / "notes.db").write_bytes(b"not a state file")  # ignored, not a run
    return tmp_path, bars


def test_one_line_per_run_with_age_equity_position_and_health(runs):
    root, bars = runs
    now = time.time()
    (line,) = scan(root / "healthy", now=now)
    last = bars["fresh"][-1]
    assert line.strategy == "fresh" and line.mode == "paper"
    assert line.last_bar == last[0]
    assert line.age_seconds == pytest.approx(now - (last[0] / 1000 + 3600))
    assert 500 < line.age_seconds < 1500
    assert line.equity == last[5] and line.position == pytest.approx(last[3])
    assert line.health == "feed_end" and not line.problem
    (old,) = scan(root / "stale", now=now)
    assert old.problem and old.health.startswith("stale")
    assert 3 * 3600 - 60 < old.age_seconds < 3 * 3600 + 900
    (dd,) = scan(root / "halted", now=now)
    assert dd.problem and dd.health.startswith("halted: ") and "drawdown" in dd.health
    # a looser limit makes the 3 h old run healthy again; the halt stays a problem
    assert not scan(root / "stale", now=now, stale_after=4 * 3600)[0].problem


def test_the_exit_code_says_whether_every_run_is_healthy(runs):
    root, _ = runs
    cli = CliRunner()
    ok = cli.invoke(app, ["live", "status", "--dir", str(root / "healthy")])
    assert ok.exit_code == 0, ok.output
    assert "fresh" in ok.output and "notes" not in ok.output
    for bad in ("stale", "halted"):
        out = cli.invoke(app, ["live", "status", "--dir", str(root / bad)])
        assert out.exit_code == 1, out.output
    missing = cli.invoke(app, ["live", "status", "--dir", str(root / "nope")])
    assert missing.exit_code == 2 and "not a folder" in missing.output


def test_format_age():
    assert [format_age(s) for s in (5, 90, 3725, 200000, None)] == \
        ["5s", "1m30s", "1h02m", "2d07h", "-"]
