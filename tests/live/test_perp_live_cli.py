"""``quantlib live run --mode live`` of a perp spec: the perp exchange feed
(:mod:`quantlib.live.perp_feed`) and the command line against the loopback Binance USD-M venue
(real ``ccxt.binanceusdm``; the venue in its own process for the CLI runs).

The feed must give the bars, mark candles and funding the replay feed gives for the same data;
the CLI process must trade like the paper replay of those bars, and a SIGKILLed and restarted
CLI process must end as the uninterrupted one.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from quantlib.errors import LiveError
from quantlib.live.perp_feed import PerpExchangeFeed
from tests.live._perp_children import (
    FEE,
    LIQ_FEE,
    MMR,
    SYMBOL,
    http_advance,
    make_exchange_for,
    perp_data,
    perp_spec,
    replay_feed,
    run_paper,
    start_venue,
)
from tests.live.test_perp_exchange import _same_fills
from tests.live.test_perp_exchange_sigkill import _venue_report
from tests.support.binanceusdm_server import BinanceUsdmServer
from tests.support.ready import wait_until

ROOT = Path(__file__).resolve().parents[2]
N_FEED = 40  # bars of the in-process feed tests
SEED = 5


def _bar_tuple(bar) -> tuple:
    """A bar's fields; funding rates to the venue's 8 decimals (its wire format)."""
    return (bar.time, bar.open, bar.high, bar.low, bar.close, bar.volume, bar.mark_open,
            bar.mark_high, bar.mark_low, tuple((t, float(f"{r:.8f}")) for t, r in bar.funding))


def _venue(jitter_ms: int = 0, mark_bars: int | None = None):
    candles, mark, funding = perp_data(N_FEED, SEED)
    server = BinanceUsdmServer(fee_rate=FEE, mmr=MMR, liq_fee=LIQ_FEE, funding_jitter_ms=jitter_ms)
    server.__enter__()
    start_venue(server, candles, mark, funding)
    if mark_bars is not None:  # the venue serves mark candles of the first bars only
        server.set_klines(mark.iloc[:mark_bars], symbol=SYMBOL, price="mark")
    return server, (candles, mark, funding)


def _feed(server, **kwargs) -> PerpExchangeFeed:
    options = dict(history=5, poll_seconds=0.0, max_polls=3, funding_wait=0.5) | kwargs
    return PerpExchangeFeed(make_exchange_for(server.url), SYMBOL, "1h", **options)


def test_feed_gives_the_replay_feeds_bars_mark_and_funding_bar_by_bar():
    """Bar i is released once the venue is past its close, with the payments in (previous
    close, close] (Binance's few ms of settlement delay floored away), as the replay feed."""
    server, (candles, mark, funding) = _venue(jitter_ms=7)
    try:
        times = [int(t) for t in candles.index.as_unit("ms").asi8]
        server.advance(1)
        server.now_ms = times[1] + 1000  # a second after the open: the payment is published
        got = []
        for bar in _feed(server):
            got.append(bar)
            server.advance(len(got) + 1)
            server.now_ms = server.clock_ms() + 1000
    finally:
        server.__exit__(None, None, None)
    want = list(replay_feed(candles, mark, funding, N_FEED))
    assert [_bar_tuple(b) for b in got] == [_bar_tuple(b) for b in want]
    assert sum(len(b.funding) for b in got) >= 4  # the check covers payments
    assert [b.warmup_only for b in got] == [False] * N_FEED


def test_feed_started_late_warms_up_on_history_and_decides_the_newest_bar():
    server, (candles, mark, funding) = _venue()
    try:
        server.advance(20)  # bars 0..19 closed before the feed starts
        got = list(_feed(server, history=30))
    finally:
        server.__exit__(None, None, None)
    want = list(replay_feed(candles, mark, funding, 20))
    assert [_bar_tuple(b) for b in got] == [_bar_tuple(b) for b in want]
    assert [b.warmup_only for b in got] == [True] * 19 + [False]


def test_feed_waits_for_the_mark_candle():
    server, (candles, _, _) = _venue(mark_bars=12)
    try:
        server.advance(20)
        got = list(_feed(server, history=30))
    finally:
        server.__exit__(None, None, None)
    assert [b.time for b in got] == [int(t) for t in candles.index.as_unit("ms").asi8[:12]]


def _funding_close_index(candles, funding) -> int:
    """A bar index whose close is a payment time (not the first payment)."""
    times = list(candles.index)
    return times.index(funding.index[2]) - 1


def test_unpublished_funding_payment_stops_the_feed_by_name():
    server, (candles, _, funding) = _venue(jitter_ms=7)
    try:
        i = _funding_close_index(candles, funding)
        server.advance(i + 1)  # the venue's clock is exactly at the close: not published yet
        feed = _feed(server, history=30, funding_wait=0.3, poll_seconds=0.05)
        with pytest.raises(LiveError, match=r"BTC/USDT:USDT: the funding payment due at "
                                            + funding.index[2].strftime("%Y-%m-%d %H:%M:%S")):
            list(feed)
    finally:
        server.__exit__(None, None, None)


def test_a_payment_published_within_the_wait_is_carried_by_its_bar():
    server, (candles, _, funding) = _venue(jitter_ms=7)
    try:
        i = _funding_close_index(candles, funding)
        server.advance(i + 1)
        later = server.clock_ms() + 1000
        timer = threading.Timer(0.3, lambda: setattr(server, "now_ms", later))
        timer.start()
        got = list(_feed(server, history=30, funding_wait=60, poll_seconds=0.05))
        timer.join()
    finally:
        server.__exit__(None, None, None)
    stamp = int(funding.index[2].value // 1_000_000)
    assert got[-1].time == int(candles.index[i].value // 1_000_000)
    assert (stamp, float(f"{funding['funding_rate'].iloc[2]:.8f}")) in got[-1].funding


# -- the command line ----------------------------------------------------------------------------

N_BARS = 60
KILL_AT = 30  # bar index after which the crashed run is killed once
_CHILD = ("import sys; sys.argv = ['quantlib', *sys.argv[1:]]\n"
          "from quantlib.cli import main\nmain()\n")


@pytest.fixture(scope="module")
def promoted_spec(tmp_path_factory):
    from quantlib import jit
    from tests.live._approve import promoted

    jit.ensure_built()  # the trading process runs ahead-of-time kernels
    return promoted(perp_spec(), tmp_path_factory.mktemp("perp_cli"))


def _start_cli(spec_path: Path, state: Path, url: str) -> subprocess.Popen:
    from tests.support.binanceusdm_server import DEFAULT_API_KEY, DEFAULT_SECRET

    env = dict(os.environ, PYTHONPATH=str(ROOT), QUANTLIB_BINANCEUSDM_API_KEY=DEFAULT_API_KEY,
               QUANTLIB_BINANCEUSDM_SECRET=DEFAULT_SECRET, QUANTLIB_BINANCEUSDM_API_URL=url)
    args = ["live", "run", "--strategy", str(spec_path), "--mode", "live", "--feed", "exchange",
            "--state", str(state), "--poll-seconds", "0.05",
            "--log-file", str(state) + ".log"]
    return subprocess.Popen([sys.executable, "-c", _CHILD, *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _done_index(state: Path, times: list[int]) -> int:
    """Index of the last bar the runner finished (its heartbeat, written after the send)."""
    try:
        beat = json.loads(Path(str(state) + ".status.json").read_text())
    except (OSError, ValueError):
        return -1
    last = beat.get("last_bar")
    return times.index(int(last)) if last in times else -1


def _drive(proc, state: Path, times: list[int], url: str, venue_at: int,
           kill_after: int | None) -> int:
    """Move the venue one bar each time the runner has finished the bar that closed; kill the
    runner (SIGKILL) just after the venue moved past bar ``kill_after``, or engage the kill
    switch once the last bar is done. Returns the venue's bar index."""
    advance = http_advance(url)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        done = _done_index(state, times)
        if done == N_BARS - 1:
            Path(str(state) + ".stop").write_text("stop requested\n")
            return venue_at
        if done >= venue_at - 1 and venue_at < N_BARS:
            venue_at += 1
            advance(venue_at)
            if kill_after is not None and done >= kill_after:
                time.sleep(0.03)  # mid-bar: the runner is polling or deciding the new bar
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(30)
                return venue_at
        if proc.poll() is not None:
            raise AssertionError(f"the CLI exited early ({proc.returncode}): "
                                 f"{proc.stderr.read()[-3000:]}")
        time.sleep(0.02)
    raise AssertionError(f"the CLI did not reach bar {N_BARS - 1} (at {_done_index(state, times)})")


def _cli_run(spec_path: Path, state: Path, times: list[int], kill_after: int | None) -> dict:
    server, parent, url = _start_venue_of(N_BARS)
    proc = None
    try:
        http_advance(url)(1)
        venue_at = 1
        proc = _start_cli(spec_path, state, url)
        venue_at = _drive(proc, state, times, url, venue_at, kill_after)
        if kill_after is not None:
            assert proc.returncode == -signal.SIGKILL
            proc = _start_cli(spec_path, state, url)
            _drive(proc, state, times, url, venue_at, None)
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-3000:]
        assert json.loads(out.strip().splitlines()[-1])["stopped_by"] == "kill_switch"
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        report = _venue_report(server, parent)
    return report


def _start_venue_of(n_bars: int):
    """The loopback venue in its own process (URL and a pipe for its report)."""
    from tests.live._perp_children import venue_process
    from tests.live.test_crash_safety import CTX
    from tests.support.ready import wait_for_server

    parent, child = CTX.Pipe()
    server = CTX.Process(target=venue_process, args=(child, n_bars, SEED))
    server.start()
    wait_until(parent.poll, 120, describe="the venue process to send its URL", process=server)
    url = parent.recv()
    wait_for_server(f"{url}/fapi/v1/ping", 120, process=server)
    return server, parent, url


def _fills(state: Path) -> list:
    from quantlib.live.state import StateStore

    store = StateStore(state)
    try:
        return [row[1:] for row in store.fills()], store.snapshot()
    finally:
        store.close()


@pytest.mark.timeout(300)
def test_cli_live_perp_run_trades_as_the_paper_replay_and_survives_a_sigkill(
        promoted_spec, tmp_path):
    candles, mark, funding = perp_data(N_BARS, SEED)
    times = [int(t) for t in candles.index.as_unit("ms").asi8]
    ref_report = _cli_run(promoted_spec, tmp_path / "ref.db", times, None)
    got_report = _cli_run(promoted_spec, tmp_path / "crash.db", times, KILL_AT)
    ref_fills, ref_state = _fills(tmp_path / "ref.db")
    got_fills, got_state = _fills(tmp_path / "crash.db")
    paper = run_paper(perp_spec(), str(tmp_path / "paper.db"),
                      replay_feed(candles, mark, funding, N_BARS))
    # the uninterrupted CLI run trades as the paper replay of the same bars
    assert ref_report["errors"] == [] and ref_report["duplicates"] == {}
    paper_fills = [row[1:] for row in paper.fills()]
    assert len(paper_fills) >= 6 and any(row[1] < 0 for row in paper_fills)  # shorts too
    assert sum(o[4] for o in ref_report["orders"]) >= 2  # reduce-only closes reached the venue
    _same_fills([r for r in ref_fills if r[0] < times[N_BARS]], paper_fills)
    assert len(ref_report["funding"]) >= 4
    paid = sum(-float(income) for _, income in ref_report["funding"])
    assert float(ref_state["meta"]["funding_net"]) == pytest.approx(paid, rel=1e-9)
    if all(r[0] < times[N_BARS] for r in ref_fills):  # no fill at the venue's extra bar
        assert float(ref_state["meta"]["cash"]) == pytest.approx(
            paper.get_float("cash", 0.0), rel=1e-6)
    # the SIGKILLed and restarted run ends as the uninterrupted one
    starts = [json.loads(line) for line in (tmp_path / "crash.db.log").read_text().splitlines()]
    resumed = [e["resume_after"] for e in starts if e["event"] == "start"]
    assert len(resumed) == 2 and resumed[0] is None and resumed[1] >= times[KILL_AT]
    assert got_report["errors"] == [] and got_report["duplicates"] == {}
    assert got_report["orders"] == ref_report["orders"]
    assert got_report["position"] == ref_report["position"]
    assert got_report["cash"] == ref_report["cash"]
    assert got_fills == ref_fills
    for key in ("cash", "position", "entry_price", "margin", "funding_net", "last_bar"):
        assert got_state["meta"][key] == ref_state["meta"][key], key


def _invoke(args: list[str]):
    from typer.testing import CliRunner

    from quantlib.cli import app

    # --kernels jit: never bind ahead-of-time kernels into the test process
    return CliRunner().invoke(app, ["live", "run", "--kernels", "jit", *args])


def test_cli_refuses_live_perp_trading_on_replayed_files(promoted_spec, tmp_path):
    state = tmp_path / "s.db"
    out = _invoke(["--strategy", str(promoted_spec), "--mode", "live", "--state", str(state),
                   "--feed", "replay-perp:c.csv,mark=m.csv,funding=f.csv"])
    assert out.exit_code == 2
    assert "live perp trading" in out.output and "use --feed exchange" in out.output
    assert not state.exists()  # a refused start leaves no state file


def test_cli_refuses_a_perp_spec_on_a_spot_replay_feed(tmp_path):
    from quantlib.strategy.spec import save_spec

    spec_path = save_spec(perp_spec(), tmp_path / "perp.json")
    out = _invoke(["--strategy", str(spec_path), "--mode", "paper", "--state",
                   str(tmp_path / "s.db"), "--feed", "replay:bars.csv"])
    assert out.exit_code == 2
    assert "a perp spec needs --feed exchange or --feed replay-perp:" in out.output


def test_cli_paper_trades_the_perp_exchange_feed_without_keys(tmp_path, monkeypatch):
    from quantlib.strategy.spec import save_spec

    server, (candles, _, _) = _venue()
    try:
        server.advance(40)  # bars 0..39 closed: history warms up, bar 39 is decided now
        monkeypatch.setenv("QUANTLIB_BINANCEUSDM_API_URL", server.url)
        monkeypatch.delenv("QUANTLIB_BINANCEUSDM_API_KEY", raising=False)
        spec_path = save_spec(perp_spec(), tmp_path / "perp.json")
        out = _invoke(["--strategy", str(spec_path), "--mode", "paper", "--feed", "exchange",
                       "--state", str(tmp_path / "p.db"), "--max-bars", "1",
                       "--poll-seconds", "0.05", "--log-file", str(tmp_path / "log.jsonl")])
        signed = [r.path for r in server.requests if r.path.startswith(("/sapi", "/fapi/v2"))]
    finally:
        server.__exit__(None, None, None)
    assert out.exit_code == 0, out.output
    summary = json.loads(out.output.strip().splitlines()[-1])
    assert summary["bars_processed"] == 1 and summary["stopped_by"] == "max_bars"
    assert summary["last_bar"] == int(candles.index[39].value // 1_000_000)
    assert signed == []  # public data only
