"""Candles from trades (``quantlib data fetch --from-trades``) against the loopback Kraken's public
``Trades`` endpoint: cursor paging, the day-partitioned trade cache, candles equal to a pandas
resample of the same trades, 429s/timeouts, a SIGKILL in the middle of a download, and source
strings served from the trade cache.

The trades are synthetic (seeded), 100 us resolution like Kraken's, with a hole of several hours
(no trade: gaps, never invented bars). The server's clock is set after the last trade.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from quantlib.cli import app
from quantlib.data import fetch, load, synthetic_ohlcv, validate_ohlcv
from quantlib.data.trades import (
    covered_ohlcv,
    download_trades,
    read_state,
    read_trades,
    trades_dir,
    trades_to_ohlcv,
)
from quantlib.errors import DataError
from tests.support.kraken_server import KrakenServer, make_ccxt_kraken
from tests.support.ready import wait_until

START = pd.Timestamp("2024-01-01", tz="UTC")
START_MS = START.value // 1_000_000
DAYS = 3
HOLE = (pd.Timestamp("2024-01-02 05:00", tz="UTC"), pd.Timestamp("2024-01-02 09:30", tz="UTC"))
REPO = Path(__file__).resolve().parents[2]


def make_trades(n: int, seed: int = 1, days: int = DAYS) -> pd.DataFrame:
    """``n`` trades over ``days`` days from START, none inside HOLE; unique 100-us times."""
    rng = np.random.default_rng(seed)
    span_units = days * 86_400 * 10_000  # 100-us units
    units = np.sort(rng.choice(span_units, size=int(n * 1.2), replace=False))
    time_ns = START.value + units.astype(np.int64) * 100_000
    outside = (time_ns < HOLE[0].value) | (time_ns >= HOLE[1].value)
    time_ns = time_ns[outside][:n]
    price = 40_000 * np.exp(np.cumsum(rng.normal(0, 4e-4, len(time_ns))))
    return pd.DataFrame({
        "time_ns": time_ns, "price": np.round(price, 1),
        "volume": np.round(rng.lognormal(-3, 1, len(time_ns)), 8),
        "side": rng.choice(["b", "s"], len(time_ns)),
        "trade_id": np.arange(len(time_ns), dtype=np.int64) + 70_000_000,
    })


def reference_bars(trades: pd.DataFrame, timeframe: str, start: pd.Timestamp,
                   end: pd.Timestamp) -> pd.DataFrame:
    """An independent computation: pandas resample of the raw served trades, empty bins dropped."""
    stamps = pd.to_datetime(trades["time_ns"] // 1_000_000, unit="ms", utc=True)
    frame = pd.DataFrame({"price": trades["price"].to_numpy(),
                          "volume": trades["volume"].to_numpy()}, index=stamps)
    frame = frame[(frame.index >= start) & (frame.index < end)]
    bars = frame["price"].resample(timeframe.replace("m", "min"), origin="epoch").ohlc()
    bars["volume"] = frame["volume"].resample(timeframe.replace("m", "min"),
                                              origin="epoch").sum()
    bars = bars.dropna(subset=["open"])
    return bars[bars.index + pd.Timedelta(timeframe.replace("m", "min")) <= end]


@pytest.fixture
def trades():
    return make_trades(12_500)


@pytest.fixture
def server(trades, monkeypatch):
    monkeypatch.setattr(fetch, "_now_ms", lambda: START_MS + (DAYS + 1) * 86_400_000)
    with KrakenServer() as srv:
        srv.set_trades(trades)
        srv.now = (START + pd.Timedelta(days=DAYS, hours=2)).timestamp()
        yield srv
        assert srv.errors == []


@pytest.fixture
def backoffs(monkeypatch):
    delays: list[float] = []
    monkeypatch.setattr(fetch, "_sleep", delays.append)
    return delays


def _cache_frame(root: Path) -> pd.DataFrame:
    files = sorted(trades_dir(root, "kraken", "BTC/USD").glob("*.parquet"))
    return pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)


def _assert_cache_is_the_served_trades(root: Path, served: pd.DataFrame) -> None:
    cached = _cache_frame(root)
    assert cached["id"].is_unique
    np.testing.assert_array_equal(cached["id"].to_numpy(), served["trade_id"].to_numpy())
    np.testing.assert_array_equal(cached["timestamp"].to_numpy(),
                                  served["time_ns"].to_numpy() // 1_000_000)
    np.testing.assert_array_equal(cached["price"].to_numpy(), served["price"].to_numpy())
    np.testing.assert_array_equal(cached["amount"].to_numpy(), served["volume"].to_numpy())
    np.testing.assert_array_equal(cached["side"].to_numpy(),
                                  np.where(served["side"] == "b", 1, -1))


# --------------------------------------------------------------------------- paging and the cache
def test_download_pages_by_kraken_cursor_into_day_files(server, trades, tmp_path):
    state = download_trades(make_ccxt_kraken(server), "BTC/USD", START,
                            START + pd.Timedelta(days=DAYS), cache_dir=tmp_path, progress=False)
    assert state.done and state.covered_to_ms == START_MS + DAYS * 86_400_000
    _assert_cache_is_the_served_trades(tmp_path, trades)
    folder = trades_dir(tmp_path, "kraken", "BTC/USD")
    assert sorted(p.name for p in folder.glob("*.parquet")) == [
        "2024-01-01.parquet", "2024-01-02.parquet", "2024-01-03.parquet"]
    # Kraken paging: the first cursor is one ns before `since`; each next one is the `last`
    # the previous response sent, i.e. the time of every 1000th trade in ns.
    cursors = [r.params["since"] for r in server.requests_for("Trades")]
    times = trades["time_ns"].to_numpy()
    expected = [str(START.value - 1)] + [str(times[i]) for i in range(999, len(times), 1000)]
    assert cursors == expected
    assert len(cursors) == 13  # 12 full pages and a short one (the last 500 trades)


def test_trade_candles_equal_a_pandas_resample(server, trades, tmp_path):
    end = START + pd.Timedelta(days=DAYS)
    download_trades(make_ccxt_kraken(server), "BTC/USD", START, end, cache_dir=tmp_path,
                    progress=False)
    for timeframe in ("15m", "1h", "4h"):
        bars = covered_ohlcv("kraken", "BTC/USD", timeframe, START_MS, end.value // 1_000_000,
                             tmp_path)
        want = reference_bars(trades, timeframe, START, end)
        assert bars.index.equals(want.index.rename("timestamp"))
        np.testing.assert_array_equal(bars[["open", "high", "low", "close"]].to_numpy(),
                                      want[["open", "high", "low", "close"]].to_numpy())
        np.testing.assert_allclose(bars["volume"].to_numpy(), want["volume"].to_numpy(),
                                   rtol=1e-12)
        summary = validate_ohlcv(bars, timeframe)
        # Intervals without a trade have no bar: reported as gaps, never filled.
        step = pd.Timedelta(timeframe.replace("m", "min"))
        n_slots = (want.index[-1] - want.index[0]) // step + 1
        assert summary.n_missing == n_slots - len(want) >= (HOLE[1] - HOLE[0]) // step - 1
    one_hour = covered_ohlcv("kraken", "BTC/USD", "1h", START_MS, end.value // 1_000_000, tmp_path)
    assert pd.Timestamp("2024-01-02 06:00", tz="UTC") not in one_hour.index
    assert one_hour.attrs["candles"] == "built from trades"


def test_unaligned_span_keeps_only_whole_bars():
    t = pd.DataFrame({"timestamp": [0, 1_800_000, 3_600_000, 5_400_000, 7_199_999],
                      "id": [1, 2, 3, 4, 5], "price": [1.0, 2.0, 3.0, 4.0, 5.0],
                      "amount": [1.0] * 5})
    bars = trades_to_ohlcv(t, "1h", 1, 7_000_000)  # no whole hour inside [1 ms, 1h56m)
    assert bars.empty
    bars = trades_to_ohlcv(t, "1h", 0, 7_200_000)
    assert bars["close"].tolist() == [2.0, 5.0] and bars["open"].tolist() == [1.0, 3.0]


def test_resume_after_a_stop_continues_from_the_cursor(server, trades, tmp_path):
    exchange = make_ccxt_kraken(server)
    mid = START + pd.Timedelta(days=1, hours=7)
    first = download_trades(exchange, "BTC/USD", START, mid, cache_dir=tmp_path, progress=False)
    assert first.covered_to_ms == mid.value // 1_000_000
    n_first = len(server.requests_for("Trades"))
    download_trades(exchange, "BTC/USD", START, START + pd.Timedelta(days=DAYS),
                    cache_dir=tmp_path, progress=False)
    cursors = [int(r.params["since"]) for r in server.requests_for("Trades")[n_first:]]
    assert cursors[0] < mid.value and cursors[0] >= mid.value - 10**12  # continued, not restarted
    _assert_cache_is_the_served_trades(tmp_path, trades)


# --------------------------------------------------------------------------- faults
def test_429s_and_timeouts_during_a_download(server, trades, tmp_path, backoffs):
    server.fault_delay = 0.6
    server.inject_fault("Trades", "http", status=429, times=2, after=3)
    server.inject_fault("Trades", "timeout", delay=0.6, after=4)
    server.inject_fault("Trades", "http", status=503, after=1)
    download_trades(make_ccxt_kraken(server, timeout=250), "BTC/USD", START,
                    START + pd.Timedelta(days=DAYS), cache_dir=tmp_path, progress=False)
    faults = [r.fault for r in server.requests_for("Trades")]
    assert faults.count("http") == 3 and faults.count("timeout") == 1
    assert len(faults) == 13 + 4
    assert backoffs == [0.5, 1.0, 0.5, 0.5]  # doubled within one page's retries, reset after
    _assert_cache_is_the_served_trades(tmp_path, trades)


def test_retries_exhausted_is_a_clear_error_and_the_cache_resumes(server, trades, tmp_path,
                                                                backoffs):
    from quantlib.errors import ExchangeError

    server.inject_fault("Trades", "http", status=503, times=3, after=5)
    with pytest.raises(ExchangeError, match="kraken BTC/USD trades .*gave up after 3 attempts"):
        download_trades(make_ccxt_kraken(server), "BTC/USD", START,
                        START + pd.Timedelta(days=DAYS), cache_dir=tmp_path, progress=False,
                        max_retries=2)
    state = read_state(trades_dir(tmp_path, "kraken", "BTC/USD"))
    assert not state.done and state.n_trades == 5000
    download_trades(make_ccxt_kraken(server), "BTC/USD", START, START + pd.Timedelta(days=DAYS),
                    cache_dir=tmp_path, progress=False)
    _assert_cache_is_the_served_trades(tmp_path, trades)


# --------------------------------------------------------------------------- SIGKILL mid-download
def _child(server: KrakenServer, root: Path) -> subprocess.Popen:
    args = [sys.executable, "-m", "quantlib.cli", "data", "fetch", "--exchange", "kraken",
            "--symbol", "BTC/USD", "--timeframe", "1h", "--since", "2024-01-01",
            "--until", "2024-01-04", "--cache-dir", str(root), "--base-url", server.url,
            "--from-trades", "--no-progress"]
    return subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)


def _stored(root: Path) -> int:
    """Progress of a download: trades in the day files written so far (what a kill interrupts)."""
    folder = trades_dir(root, "kraken", "BTC/USD")
    files = list(folder.glob("*.parquet")) if folder.exists() else []
    total = 0
    for path in files:
        try:
            total += len(pd.read_parquet(path, columns=["id"]))
        except (OSError, ValueError):  # replaced while read: count it next poll
            return 0
    return total


def test_sigkill_mid_download_then_rerun_equals_an_uninterrupted_download(server, trades,
                                                                         tmp_path):
    server.latency["Trades"] = 0.04  # a page every ~50 ms: time to kill in the middle
    killed = tmp_path / "killed"
    rng = np.random.default_rng(int.from_bytes(os.urandom(4), "little"))
    # Two kills, each after the child made progress of its own (the second one resumes first).
    first = int(rng.integers(1_000, 5_000))
    kill_points = [first, first + int(rng.integers(2_000, 4_000))]
    for point in kill_points:
        child = _child(server, killed)
        wait_until(lambda point=point: _stored(killed) >= point, 120,
                   describe=f"{point} trades stored", process=child, max_interval=0.01)
        child.send_signal(signal.SIGKILL)
        child.wait(30)
        assert child.returncode == -signal.SIGKILL
        assert _stored(killed) < len(trades)  # killed in the middle, not after the end
    child = _child(server, killed)
    output, _ = child.communicate(timeout=120)
    assert child.returncode == 0, output
    assert "kraken:BTC/USD:1h:2024-01-01:2024-01-04:" in output

    server.latency.clear()
    clean = tmp_path / "clean"
    download_trades(make_ccxt_kraken(server), "BTC/USD", START, START + pd.Timedelta(days=DAYS),
                    cache_dir=clean, progress=False)
    pd.testing.assert_frame_equal(_cache_frame(killed), _cache_frame(clean))
    _assert_cache_is_the_served_trades(killed, trades)  # no gap, no duplicate id


# --------------------------------------------------------------------------- CLI and sources
def test_cli_from_trades_says_how_long_and_builds_the_candles(server, trades, tmp_path):
    result = CliRunner().invoke(app, [
        "data", "fetch", "--exchange", "kraken", "--symbol", "BTC/USD", "--timeframe", "4h",
        "--since", "2024-01-01", "--until", "2024-01-04", "--cache-dir", str(tmp_path),
        "--base-url", server.url, "--from-trades", "--no-progress"])
    assert result.exit_code == 0, result.output
    # The estimate, said after the first page: the span over the first page's time coverage.
    first_page_ms = (trades["time_ns"].iloc[999] - trades["time_ns"].iloc[0]) // 1_000_000
    pages = int(np.ceil(DAYS * 86_400_000 / first_page_ms))
    assert f"kraken BTC/USD: about {pages:,} trade requests for this span" in result.stderr
    assert "0.00 s per request" in result.stderr  # the loopback's rate limit (1 ms)
    assert "a rerun resumes where it stopped" in result.stderr
    want = reference_bars(trades, "4h", START, START + pd.Timedelta(days=DAYS))
    assert f"kraken:BTC/USD:4h:2024-01-01:2024-01-04: {len(want)} bars" in result.stdout
    assert str(trades_dir(tmp_path, "kraken", "BTC/USD")) in result.stdout


def test_source_string_uses_trade_candles_when_covered(server, trades, tmp_path, monkeypatch):
    end = START + pd.Timedelta(days=DAYS)
    monkeypatch.setenv("QUANTLIB_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("QUANTLIB_KRAKEN_API_URL", server.url)
    download_trades(make_ccxt_kraken(server), "BTC/USD", START, end, progress=False)
    server.clear_requests()
    df = load("kraken:BTC/USD:1h:2024-01-01:2024-01-03")
    assert server.requests == []  # served from the trade cache, no request
    want = reference_bars(trades, "1h", START, pd.Timestamp("2024-01-03", tz="UTC"))
    np.testing.assert_array_equal(df[["open", "high", "low", "close"]].to_numpy(),
                                  want[["open", "high", "low", "close"]].to_numpy())
    assert df.attrs["source_string"] == "kraken:BTC/USD:1h:2024-01-01:2024-01-03"
    assert len(read_trades(tmp_path, "kraken", "BTC/USD", START_MS, START_MS + 3_600_000)) > 0
    # Without UNTIL: every whole bar of the fetched span.
    open_ended = load("kraken:BTC/USD:1h:2024-01-01")
    assert server.requests == []
    full = reference_bars(trades, "1h", START, end)
    assert open_ended.index.equals(full.index.rename("timestamp"))
    np.testing.assert_array_equal(open_ended["close"].to_numpy(), full["close"].to_numpy())
    # Outside the trade cache's span the OHLC endpoint answers: its 720 recent hours cannot
    # reach December 2023, so the load is refused and points at --from-trades.
    recent = synthetic_ohlcv(100, "1h", seed=2, start=START + pd.Timedelta(hours=DAYS * 24 - 97))
    server.set_ohlcv(recent.ohlcv, timeframe="1h")
    with pytest.raises(DataError, match="requested from 2023-12-01.*--from-trades"):
        load("kraken:BTC/USD:1h:2023-12-01:2023-12-05")
    assert len(server.requests_for("OHLC")) == 1


def test_trade_download_draws_a_progress_bar_with_eta(server, tmp_path, capsys, monkeypatch):
    import rich
    from rich.console import Console

    monkeypatch.setattr(rich, "_console", Console(force_terminal=True, width=120))
    server.latency["Trades"] = 0.02
    download_trades(make_ccxt_kraken(server), "BTC/USD", START, START + pd.Timedelta(days=DAYS),
                    cache_dir=tmp_path, progress=True)
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", capsys.readouterr().out)
    assert "kraken BTC/USD trades" in text
    total = DAYS * 24 * 60  # the bar counts minutes of history
    assert f"0/{total}" in text and f"{total}/{total}" in text
    assert re.search(r"\d:\d\d:\d\d", text)  # rich's time-remaining column (the ETA)


def test_trade_requests_are_paced_by_the_rate_limit(server, tmp_path):
    exchange = make_ccxt_kraken(server, rateLimit=100)  # Trades cost 1.2 -> >= 120 ms apart
    said: list[str] = []
    download_trades(exchange, "BTC/USD", START, START + pd.Timedelta(days=1), cache_dir=tmp_path,
                    progress=False, echo=said.append)
    times = [r.time for r in server.requests_for("Trades")]
    assert len(times) >= 4 and min(np.diff(times)) >= 0.11
    assert "0.12 s per request" in said[0] and said[0].startswith("kraken BTC/USD trades")
    assert "about" in said[1] and "0.12 s per request" in said[1]
