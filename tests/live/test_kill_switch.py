"""`quantlib live stop` cannot miss: it refuses a state file no runner holds (a mistyped path
must not report success while the real runner trades on) and waits until the runner's
heartbeat confirms it saw the stop, or says it did not."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from quantlib.cli import app
from quantlib.data import synthetic_ohlcv
from quantlib.live import CANCEL_ORDERS
from quantlib.live.cli import stop_request
from quantlib.live.state import StateStore
from quantlib.strategy.spec import save_spec
from tests.live.conftest import make_spec
from tests.support.kraken_server import KrakenServer
from tests.support.ready import OutputTail, wait_until

ROOT = Path(__file__).resolve().parents[2]


def _stop(state: Path, *extra: str):
    return CliRunner().invoke(app, ["live", "stop", "--state", str(state), *extra])


def _lock_held(state: Path) -> bool:
    try:
        handle = open(str(state) + ".lock")  # noqa: SIM115
    except OSError:
        return False
    try:
        fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        handle.close()
    return False


@pytest.fixture
def running_runner(tmp_path):
    """A real `quantlib live run` process in paper mode on the loopback exchange's feed: it
    polls for the next candle and runs until something stops it."""
    data = synthetic_ohlcv(n_bars=60, seed=4).ohlcv
    spec_path = save_spec(make_spec("ma_cross", {"fast": 3, "slow": 10}), tmp_path / "s.json")
    (tmp_path / "st").mkdir()
    state = tmp_path / "st" / "ks.db"
    with KrakenServer(data, symbol="BTC/USD") as server:
        env = dict(os.environ, PYTHONPATH=str(ROOT), QUANTLIB_KRAKEN_API_URL=server.url)
        cmd = [sys.executable, "-m", "quantlib.cli", "live", "run", "--strategy",
               str(spec_path), "--mode", "paper", "--feed", "exchange", "--state", str(state),
               "--poll-seconds", "0.5", "--kernels", "jit",
               "--log-file", str(tmp_path / "run.log")]
        proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        output = OutputTail(proc.stdout)
        try:
            log = tmp_path / "run.log"
            wait_until(lambda: log.exists() and '"event": "start"' in log.read_text(), 300,
                       describe="the runner's start event", process=proc, output=output)
            assert _lock_held(state)
            yield proc, state, output
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(30)


def test_a_mistyped_state_path_is_refused_and_the_real_stop_is_confirmed(running_runner):
    proc, state, output = running_runner
    typo = state.with_name("KS.db")
    out = _stop(typo)
    assert out.exit_code == 2
    assert f"state file {typo} does not exist" in out.output
    assert not Path(str(typo) + ".stop").exists()
    assert not Path(str(state) + ".stop").exists()
    assert proc.poll() is None and _lock_held(state)  # the real runner still trades

    out = _stop(state)
    assert out.exit_code == 0, out.output
    assert "stop confirmed" in out.output and f"pid {proc.pid}" in out.output
    beat = json.loads(Path(str(state) + ".status.json").read_text())
    assert beat["health"] == "kill_switch" and beat["pid"] == proc.pid
    assert proc.wait(60) == 0, output()
    assert json.loads(output().strip().splitlines()[-1])["stopped_by"] == "kill_switch"


def test_a_state_file_without_a_runner_is_refused(tmp_path):
    state = tmp_path / "idle.db"
    StateStore(state).close()  # a real state file, but nobody runs on it
    out = _stop(state)
    assert out.exit_code == 2
    assert "no live runner is running on" in out.output
    assert not Path(str(state) + ".stop").exists()


def test_a_file_that_is_not_a_state_file_is_refused(tmp_path):
    other = tmp_path / "notes.db"
    other.write_text("not a database\n")
    out = _stop(other)
    assert out.exit_code == 2 and "not a quantlib state file" in out.output
    assert not Path(str(other) + ".stop").exists()


def test_no_confirmation_within_the_timeout_is_an_error(tmp_path):
    """Something holds the run lock but never writes a heartbeat (a hung runner): the stop is
    written, and the command says it was not confirmed, exiting non-zero."""
    state = tmp_path / "hung.db"
    StateStore(state).close()
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, sys, time\n"
         "h = open(sys.argv[1], 'a+'); fcntl.flock(h, fcntl.LOCK_EX)\n"
         "print('locked', flush=True); time.sleep(120)\n", str(state) + ".lock"],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        out = _stop(state, "--timeout", "1", "--cancel-orders")
        assert out.exit_code == 3
        assert "did not confirm the stop within 1 s" in out.output
        assert "still running" in out.output
        # engaged all the same, asking a grid to pull its resting orders
        assert Path(str(state) + ".stop").read_text() == stop_request(cancel_orders=True)
        assert CANCEL_ORDERS in stop_request(True) and CANCEL_ORDERS not in stop_request()
    finally:
        holder.kill()
        holder.wait(30)
