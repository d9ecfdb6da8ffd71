"""CRASH SAFETY: SIGKILL the runner at random moments, restart, and end where an uninterrupted run
ends, with no order (id) twice, on paper and against the loopback Kraken exchange.

Runners run in real child processes (forked from the test process, so the heavy imports and numba
compilation are paid once) and are killed with SIGKILL: no ``finally`` block, no atexit, no
SQLite close runs in the child.
"""

from __future__ import annotations

import io
import json
import multiprocessing as mp
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from quantlib.live.brokers import PaperBroker
from quantlib.live.logs import JsonLogger
from quantlib.live.replay_feeds import ReplayFeed
from quantlib.live.runner import LiveRunner
from quantlib.live.state import StateStore
from tests.live._crash_children import _ccxt_child, _paper_child, _server_process
from tests.live.conftest import make_spec
from tests.support.ready import OutputTail, wait_for_server, wait_until

N_KILLS = 12
LONG_BARS = 3000
# fork: children start instantly with everything imported and compiled. (A forkserver would be
# immune to locks held by other threads at fork time but pays numba start-up per child.)
CTX = mp.get_context("fork")


def _kill_loop(target, args, state: Path, n_kills: int, total_bars: int, seed: int) -> list:
    """Start/kill ``n_kills`` times at kill points chosen from progress, then run to completion.

    Each incarnation is killed once the state holds a random number of bars more than when it
    started; the bars still to process are shared out among the kills left, so every kill lands
    mid-run however fast or loaded the machine is. Past that bar the kill waits a random
    fraction of one bar as this incarnation measured it, so kills land inside a bar's
    transaction, between commit and send, or between bars.

    Returns the last processed bar seen after each kill (progress between kills)."""
    rng = random.Random(seed)
    progress = []
    while len(progress) < n_kills:
        before = _bars_done(state)
        step = rng.randint(1, max(1, (total_bars - before) // (n_kills - len(progress) + 1)))
        proc = CTX.Process(target=target, args=args)
        proc.start()
        # startup (fork, replay parsing, reconciliation) is slow and variable: wait for trading
        first = _await_bars(proc, state, before + 1)
        goal = _await_bars(proc, state, before + step)
        if proc.is_alive() and goal[1] > first[1]:
            bar_seconds = (goal[0] - first[0]) / (goal[1] - first[1])
            time.sleep(rng.uniform(0.0, bar_seconds))
        if not proc.is_alive():
            proc.join()
            assert proc.exitcode == 0, f"runner child failed on its own (exit {proc.exitcode})"
            # The run finished before this kill: the feed is exhausted, no further kill can land.
            return progress
        os.kill(proc.pid, signal.SIGKILL)
        proc.join()
        progress.append(_last_bar(state))
    proc = CTX.Process(target=target, args=args)
    proc.start()
    wait_until(lambda: not proc.is_alive(), 600, describe=lambda: (
        f"the last runner to finish (at {_bars_done(state)} of {total_bars} bars)"))
    assert proc.exitcode == 0
    return progress


def _reference_and_crashed(tmp_path: Path, target, args: tuple, n_kills: int, total_bars: int,
                           seed: int, min_points: int, exchange: tuple | None = None,
                           snapshot: bool = True) -> tuple[tuple, tuple]:
    """Run ``target`` once uninterrupted and once killed ``n_kills`` times (``_kill_loop``).

    Each run gets a fresh state file, the child's last argument after ``args``; given
    ``exchange`` (a server target and its arguments) each run also gets a fresh loopback
    exchange, whose URL is the child's first argument. The killed run must really be killed
    ``n_kills`` times, at ``min_points`` or more distinct bars.

    Returns ``(reference, crashed)``: each the exchange's report (if any) followed by the
    state's snapshot (if ``snapshot``)."""
    results = []
    for label, kills in (("reference", 0), ("crashed", n_kills)):
        state = tmp_path / f"{label}.db"
        if exchange is None:
            progress = _kill_loop(target, (*args, str(state)), state, kills, total_bars, seed)
            report = ()
        else:
            server, parent, url = _start_exchange(*exchange)
            progress = _kill_loop(target, (url, *args, str(state)), state, kills, total_bars,
                                  seed)
            report = tuple(_exchange_report(server, parent))
        results.append((*report, _snapshot(state)) if snapshot else report)
        if kills:
            assert len(progress) == kills, f"the run finished after {len(progress)} kills"
            # the kills landed at many different points of the run, not all before the first bar
            assert len({p for p in progress if p is not None}) >= min_points
    return results[0], results[1]


def _assert_resumed_exactly(ref: dict, got: dict) -> None:
    """The killed run's state is the uninterrupted run's, and no order id was filled twice."""
    assert got == ref  # meta (cash, positions, stops, last bar...), orders, fills, equity curve
    ids = [row[0] for row in got["fills"]]
    assert len(ids) == len(set(ids)), "an order id was filled twice"


def _assert_same_exchange_run(reference: tuple, crashed: tuple) -> list:
    """Two runs at a loopback portfolio exchange (``_reference_and_crashed`` with a snapshot):
    no errors or duplicate client ids, and the killed run placed the same orders (by client id
    and market, each once) and ends with the same balances, state orders and last bar.

    Returns the reference run's orders, for the case's own checks."""
    (ref_orders, ref_bal, ref_dups, ref_err, ref_snap) = reference
    (orders, bal, dups, errors, snap) = crashed
    assert ref_err == [] and errors == []
    assert ref_dups == {} and dups == {}
    assert orders == ref_orders
    assert bal == pytest.approx(ref_bal, abs=1e-9)
    assert snap["orders"] == ref_snap["orders"]
    assert snap["meta"]["last_bar"] == ref_snap["meta"]["last_bar"]
    return ref_orders


def _save_markets(folder: Path, frames: dict) -> tuple[dict, dict]:
    """Each symbol's frame saved as ``<base>.csv`` in ``folder``: (symbol -> file, symbol ->
    last close, where a loopback exchange prices its balances)."""
    from quantlib.data import save_ohlcv

    files = {symbol: save_ohlcv(frame, folder / f"{symbol.split('/')[0].lower()}.csv")
             for symbol, frame in frames.items()}
    return files, {symbol: float(frame["close"].iloc[-1]) for symbol, frame in frames.items()}


def _replay_feed(files: dict) -> str:
    """The ``replay:SYMBOL=FILE,...`` feed of several markets."""
    return "replay:" + ",".join(f"{s}={p}" for s, p in files.items())


def _await_bars(proc, state: Path, bars: int) -> tuple[float, int]:
    """Wait until the state holds ``bars`` bars or the child exits; (when, bars seen)."""
    seen = [0]

    def reached() -> bool:
        seen[0] = _bars_done(state)
        return seen[0] >= bars or not proc.is_alive()

    wait_until(reached, 300, max_interval=0.002,
               describe=lambda: f"{bars} bars in {state} (it has {seen[0]})")
    return time.monotonic(), seen[0]


def _bars_done(state: Path) -> int:
    """Bars the runner has committed (each bar's row commits in the bar's transaction)."""
    if not state.exists():
        return 0
    con = sqlite3.connect(state, timeout=30.0)
    try:
        return con.execute("SELECT COUNT(*) FROM bars").fetchone()[0]
    except sqlite3.OperationalError:  # the child has not created its tables yet
        return 0
    finally:
        con.close()


def _start_exchange(target, *args, ping: str = "/0/public/Time"):
    """A loopback exchange in its own process (``target(conn, *args)``, e.g.
    ``_server_process``), ready to answer at ``ping``: (process, its end of the pipe, base
    URL)."""
    parent, child = CTX.Pipe()
    server = CTX.Process(target=target, args=(child, *args))
    server.start()
    wait_until(parent.poll, 120, describe="the exchange process to send its URL", process=server)
    url = parent.recv()
    wait_for_server(f"{url}{ping}", 120, process=server)
    return server, parent, url


def _exchange_report(server, parent):
    """What the exchange process saw (it stops afterwards)."""
    parent.send("report")
    wait_until(parent.poll, 120, describe="the exchange process's report", process=server)
    report = parent.recv()
    server.join(60)
    return report


def _last_bar(state: Path):
    if not state.exists():
        return None
    store = StateStore(state)
    try:
        return store.last_bar
    finally:
        store.close()


def _snapshot(path: Path) -> dict:
    store = StateStore(path)
    try:
        return store.snapshot()
    finally:
        store.close()


@pytest.fixture(scope="module")
def long_replay_file(tmp_path_factory) -> Path:
    """3,000 bars: a paper runner replays ~5,000 bars/s; a dozen kills, each at least a bar
    after the last, need room for the bars a loaded machine processes before the test (polling
    every few ms) sees the kill point."""
    from quantlib.data import save_ohlcv, synthetic_ohlcv

    path = tmp_path_factory.mktemp("long_replay") / "btc_1h.csv"
    save_ohlcv(synthetic_ohlcv(n_bars=LONG_BARS, seed=3).ohlcv, path)
    return path


@pytest.mark.timeout(900)
def test_sigkill_paper_runner_resumes_exactly(long_replay_file, tmp_path):
    from quantlib.strategy.spec import dump_spec

    replay_file = long_replay_file

    spec = make_spec("ma_cross", {"fast": 3, "slow": 10})
    spec_json = dump_spec(spec)
    reference = tmp_path / "reference.db"
    _paper_child_inline(spec, replay_file, reference)
    crashed = tmp_path / "crashed.db"
    progress = _kill_loop(_paper_child, (spec_json, str(replay_file), str(crashed)), crashed,
                          N_KILLS, LONG_BARS, seed=7)
    assert len(progress) == N_KILLS, f"the run finished after {len(progress)} kills"
    # The kills landed at many different points of the run, not all before the first bar.
    assert len({p for p in progress if p is not None}) >= 10
    ref, got = _snapshot(reference), _snapshot(crashed)
    assert len(ref["fills"]) >= 10
    _assert_resumed_exactly(ref, got)


def _paper_child_inline(spec, replay, state) -> None:
    store = StateStore(state)
    LiveRunner(spec, PaperBroker(store, spec), store, ReplayFeed(replay),
               logger=JsonLogger(io.StringIO())).run()
    store.close()


# -- CcxtBroker against the loopback Kraken server ---------------------------------------------

@pytest.mark.timeout(900)
def test_sigkill_ccxt_runner_never_orders_twice(tmp_path):
    from quantlib.data import save_ohlcv, synthetic_ohlcv
    from quantlib.strategy.spec import dump_spec

    replay = tmp_path / "replay.csv"
    save_ohlcv(synthetic_ohlcv(n_bars=900, seed=3).ohlcv, replay)
    spec = make_spec("ma_cross", {"fast": 3, "slow": 10}, exchange="kraken",
                     approval={"status": "approved", "by": "test"})
    spec_json = dump_spec(spec)
    ref, got = _reference_and_crashed(tmp_path, _ccxt_child, (spec_json, str(replay)), 10, 900,
                                      seed=11, min_points=6,
                                      exchange=(_server_process, str(replay)))
    orders, usd, btc, duplicates, _, snapshot = got
    assert duplicates == {} and ref[3] == {}
    assert len(ref[0]) >= 4
    assert orders == ref[0]  # the same orders reached the exchange, each exactly once
    assert (usd, btc) == (ref[1], ref[2])
    assert snapshot["orders"] == ref[5]["orders"]
    assert snapshot["meta"]["last_bar"] == ref[5]["meta"]["last_bar"]


@pytest.mark.timeout(900)
def test_cli_subprocess_resumes_after_sigkill(long_replay_file, tmp_path):
    """The real `quantlib live run` process: kill it mid-run, restart, same result."""
    from quantlib.strategy.spec import save_spec

    spec = make_spec("ma_cross", {"fast": 3, "slow": 10})
    spec_path = save_spec(spec, tmp_path / "spec.json")
    reference = tmp_path / "reference.db"
    _paper_child_inline(spec, long_replay_file, reference)
    state = tmp_path / "cli.db"
    cmd = [sys.executable, "-m", "quantlib.cli", "live", "run", "--strategy", str(spec_path),
           "--mode", "paper", "--feed", f"replay:{long_replay_file}", "--state", str(state),
           "--log-file", str(tmp_path / "log.jsonl")]
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = OutputTail(proc.stdout)
    # the kill point is a bar count, a tenth into the run (start-up may take minutes when the
    # AOT kernels are built first)
    kill_at = LONG_BARS // 10
    try:
        wait_until(lambda: _bars_done(state) >= kill_at, 600, max_interval=0.002,
                   describe=lambda: f"{kill_at} bars in {state} (it has {_bars_done(state)})",
                   process=proc, output=output)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()  # a no-op when it is dead already
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    killed_at = _bars_done(state)
    assert kill_at <= killed_at < LONG_BARS  # mid-run
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["bars_processed"] == (
        LONG_BARS - killed_at)
    assert _snapshot(state) == _snapshot(reference)
    events = Counter(line.split('"event": "')[1].split('"')[0]
                     for line in (tmp_path / "log.jsonl").read_text().splitlines())
    assert events["start"] == 2 and events["stop"] == 1


@pytest.mark.timeout(900)
def test_sigkill_grid_at_the_exchange_never_orders_twice(tmp_path):
    """A grid bot resting limit orders at the loopback Kraken, SIGKILLed at random moments and
    restarted: the exchange ends with exactly the orders (by client id) and balances of an
    uninterrupted run. The market walks each bar's path once, when a runner first asks for it."""
    from quantlib.strategy.spec import dump_spec
    from tests.live._crash_children import _grid_child, _walking_server_process
    from tests.live.test_grid_exchange import _random_rows

    rows = _random_rows(n=200)
    spec = make_spec("grid", {"spacing": "arithmetic", "n_levels": 17, "lower": 90.0,
                              "upper": 110.0, "order_value": 500.0},
                     exchange="kraken", execution={"fees": 0.0},
                     approval={"status": "approved", "by": "test"})
    spec_json = dump_spec(spec)
    reference, crashed = _reference_and_crashed(
        tmp_path, _grid_child, (spec_json, rows), 10, len(rows), seed=13, min_points=6,
        exchange=(_walking_server_process, rows), snapshot=False)
    (ref_orders, ref_usd, ref_btc, ref_dups, ref_errors) = reference
    (orders, usd, btc, dups, errors) = crashed
    assert ref_errors == [] and errors == []
    assert ref_dups == {} and dups == {}
    assert len(ref_orders) >= 20 and sum(o[5] == "closed" for o in ref_orders) >= 10
    assert orders == ref_orders  # the same orders, each once, ending the same way
    assert (usd, btc) == (pytest.approx(ref_usd, abs=1e-9), pytest.approx(ref_btc, abs=1e-12))
