"""CRASH SAFETY: SIGKILL the runner at random moments, restart, and end where an uninterrupted run
ends, with no order (id) twice, on paper and against the loopback Kraken exchange.

Runners run in real child processes (forked from the test process, so the heavy imports and numba
compilation are paid once) and are killed with SIGKILL: no ``finally`` block, no atexit, no
SQLite close runs in the child.
"""

from __future__ import annotations

import io
import multiprocessing as mp
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from quantlib.live.brokers import PaperBroker
from quantlib.live.feeds import ReplayFeed
from quantlib.live.logs import JsonLogger
from quantlib.live.runner import LiveRunner
from quantlib.live.state import StateStore
from tests.live._crash_children import _ccxt_child, _paper_child, _server_process
from tests.live.conftest import make_spec

N_KILLS = 12
# fork: children start instantly with everything imported and compiled. (A forkserver would be
# immune to locks held by other threads at fork time but pays numba start-up per child.)
CTX = mp.get_context("fork")


def _kill_loop(target, args, state: Path, n_kills: int, seed: int, max_delay: float) -> list:
    """Start/kill ``n_kills`` times at random moments, then run to completion.

    Returns the last processed bar seen after each kill (progress between kills)."""
    rng = random.Random(seed)
    progress = []
    while len(progress) < n_kills:
        before = _last_bar(state)
        proc = CTX.Process(target=target, args=args)
        proc.start()
        # Wait until this incarnation is trading (startup is slow and variable), then kill at a
        # random moment: inside a transaction, between commit and send, or between bars.
        deadline = time.time() + 60
        while proc.is_alive() and _last_bar(state) == before:
            assert time.time() < deadline, "runner child made no progress in 60 s"
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, max_delay))
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
    proc.join(120)
    assert proc.exitcode == 0
    return progress


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
    """2,000 bars: a paper runner replays ~5,000 bars/s, so 300 bars are over before a dozen
    kills (each incarnation runs until the test sees its first commit) can land."""
    from quantlib.data import save_ohlcv, synthetic_ohlcv

    path = tmp_path_factory.mktemp("long_replay") / "btc_1h.csv"
    save_ohlcv(synthetic_ohlcv(n_bars=2000, seed=3).ohlcv, path)
    return path


@pytest.mark.timeout(240)
def test_sigkill_paper_runner_resumes_exactly(long_replay_file, tmp_path):
    from quantlib.strategy.spec import dump_spec

    replay_file = long_replay_file

    spec = make_spec("ma_cross", {"fast": 3, "slow": 10})
    spec_json = dump_spec(spec)
    reference = tmp_path / "reference.db"
    started = time.perf_counter()
    _paper_child_inline(spec, replay_file, reference)
    # Random kill delays scaled to this machine's speed: the delays alone would let ~6 * N_KILLS
    # kills fit in a run; each incarnation also runs on its own until its first committed bar.
    max_delay = (time.perf_counter() - started) / (3 * N_KILLS)
    crashed = tmp_path / "crashed.db"
    progress = _kill_loop(_paper_child, (spec_json, str(replay_file), str(crashed)), crashed,
                          N_KILLS, seed=7, max_delay=max_delay)
    assert len(progress) >= 10, progress
    # The kills landed at many different points of the run, not all before the first bar.
    assert len({p for p in progress if p is not None}) >= 5
    ref, got = _snapshot(reference), _snapshot(crashed)
    assert len(ref["fills"]) >= 10
    assert got == ref  # meta (cash, position, last bar...), orders, fills, equity curve
    ids = [row[0] for row in got["fills"]]
    assert len(ids) == len(set(ids)), "an order id was filled twice"


def _paper_child_inline(spec, replay, state) -> None:
    store = StateStore(state)
    LiveRunner(spec, PaperBroker(store, spec), store, ReplayFeed(replay),
               logger=JsonLogger(io.StringIO())).run()
    store.close()


# -- CcxtBroker against the loopback Kraken server ---------------------------------------------

@pytest.mark.timeout(300)
def test_sigkill_ccxt_runner_never_orders_twice(tmp_path):
    from quantlib.data import save_ohlcv, synthetic_ohlcv
    from quantlib.strategy.spec import dump_spec

    replay = tmp_path / "replay.csv"
    # long enough that ten kills land before the feed ends, even on a loaded 2-core machine
    save_ohlcv(synthetic_ohlcv(n_bars=900, seed=3).ohlcv, replay)
    spec = make_spec("ma_cross", {"fast": 3, "slow": 10}, exchange="kraken",
                     approval={"status": "approved", "by": "test"})
    spec_json = dump_spec(spec)
    results, max_delay = {}, None
    for label, n_kills in (("reference", 0), ("crashed", 10)):
        parent, child = CTX.Pipe()
        server = CTX.Process(target=_server_process, args=(child, str(replay)))
        server.start()
        url = parent.recv()
        state = tmp_path / f"{label}.db"
        started = time.perf_counter()
        progress = _kill_loop(_ccxt_child, (url, spec_json, str(replay), str(state)),
                              state, n_kills, seed=11, max_delay=max_delay or 0.0)
        # delays for the crashed run, scaled to the reference run's speed on this machine:
        # the delays alone would let ~60 kills fit in a run
        max_delay = (time.perf_counter() - started) / 30
        parent.send("report")
        results[label] = (*parent.recv(), _snapshot(state))
        server.join(10)
        if n_kills:
            assert len(progress) == n_kills, f"the run finished after {len(progress)} kills"
            assert len({p for p in progress if p is not None}) >= 6
    ref, got = results["reference"], results["crashed"]
    orders, usd, btc, duplicates, _, snapshot = got
    assert duplicates == {} and ref[3] == {}
    assert len(ref[0]) >= 4
    assert orders == ref[0]  # the same orders reached the exchange, each exactly once
    assert (usd, btc) == (ref[1], ref[2])
    assert snapshot["orders"] == ref[5]["orders"]
    assert snapshot["meta"]["last_bar"] == ref[5]["meta"]["last_bar"]


def test_cli_subprocess_resumes_after_sigkill(replay_file, tmp_path):
    """The real `quantlib live run` process: kill it mid-run, restart, same result."""
    from quantlib.strategy.spec import save_spec

    spec = make_spec("ma_cross", {"fast": 3, "slow": 10})
    spec_path = save_spec(spec, tmp_path / "spec.json")
    reference = tmp_path / "reference.db"
    _paper_child_inline(spec, replay_file, reference)
    state = tmp_path / "cli.db"
    cmd = [sys.executable, "-m", "quantlib.cli", "live", "run", "--strategy", str(spec_path),
           "--mode", "paper", "--feed", f"replay:{replay_file}", "--state", str(state),
           "--log-file", str(tmp_path / "log.jsonl")]
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 90
    while time.time() < deadline and not _has_progress(state):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert _snapshot(state) == _snapshot(reference)
    events = Counter(line.split('"event": "')[1].split('"')[0]
                     for line in (tmp_path / "log.jsonl").read_text().splitlines())
    assert events["start"] == 2 and events["stop"] == 1


def _has_progress(state: Path) -> bool:
    if not state.exists():
        return False
    try:
        store = StateStore(state)
        try:
            return store.last_bar is not None
        finally:
            store.close()
    except Exception:
        return False


@pytest.mark.timeout(300)
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
    results, max_delay = {}, None
    for label, n_kills in (("reference", 0), ("crashed", 10)):
        parent, child = CTX.Pipe()
        server = CTX.Process(target=_walking_server_process, args=(child, rows))
        server.start()
        url = parent.recv()
        state = tmp_path / f"{label}.db"
        started = time.perf_counter()
        progress = _kill_loop(_grid_child, (url, spec_json, rows, str(state)), state, n_kills,
                              seed=13, max_delay=max_delay or 0.0)
        max_delay = (time.perf_counter() - started) / 30
        parent.send("report")
        results[label] = parent.recv()
        server.join(10)
        if n_kills:
            assert len(progress) == n_kills, f"the run finished after {len(progress)} kills"
            assert len({p for p in progress if p is not None}) >= 6
    (ref_orders, ref_usd, ref_btc, ref_dups, ref_errors) = results["reference"]
    (orders, usd, btc, dups, errors) = results["crashed"]
    assert ref_errors == [] and errors == []
    assert ref_dups == {} and dups == {}
    assert len(ref_orders) >= 20 and sum(o[5] == "closed" for o in ref_orders) >= 10
    assert orders == ref_orders  # the same orders, each once, ending the same way
    assert (usd, btc) == (pytest.approx(ref_usd, abs=1e-9), pytest.approx(ref_btc, abs=1e-12))
