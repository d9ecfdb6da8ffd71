"""Exchange history as it really is: Kraken's OHLC rule (the 720 most recent entries, the last one
forming), never a silently truncated history, closed candles by the exchange's rule and clock, and
``quantlib data info`` naming the real market of a cache file.

The loopback Kraken serves 2000 hourly bars; its clock is inside the last one unless a test sets
``server.now``. Expected values come from the served frame itself.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from quantlib.cli import app
from quantlib.data import fetch, load, synthetic_ohlcv, validate_ohlcv
from quantlib.data.cache import cache_path, read_cache, stored_metadata
from quantlib.errors import DataError
from tests.support.kraken_server import KrakenServer, make_ccxt_kraken

START = pd.Timestamp("2024-01-01", tz="UTC")
HOUR_S = 3600
runner = CliRunner()


def _market(n_bars: int = 2000, seed: int = 8) -> pd.DataFrame:
    df = synthetic_ohlcv(n_bars, "1h", seed=seed, start=START).ohlcv
    df.attrs["timeframe"] = "1h"
    return df


def _same_rows(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert got.index.equals(want.index)
    np.testing.assert_array_equal(got.to_numpy(), want.to_numpy())


@pytest.fixture
def market():
    return _market()


@pytest.fixture
def server(market, monkeypatch):
    # The local clock agrees with the server's (inside the last served bar) unless a test says.
    now_ms = market.index[-1].value // 1_000_000 + 20 * 60_000
    monkeypatch.setattr(fetch, "_now_ms", lambda: now_ms)
    with KrakenServer(market) as srv:
        yield srv
        assert srv.errors == []


def _secs(stamp: pd.Timestamp) -> int:
    return int(stamp.value // 1_000_000_000)


# --------------------------------------------------------------------------- the server's rule
def test_kraken_ohlc_serves_the_720_most_recent_whatever_since_asks(server, market):
    exchange = make_ccxt_kraken(server)
    rows = exchange.fetch_ohlcv("BTC/USD", "1h", since=_secs(START) * 1000)
    # Kraken's documentation: up to 720 of the most recent entries, the last one the current
    # candle; `since` (2024-01-01, 2000 bars back) cannot reach further.
    assert len(rows) == 720
    assert [r[0] for r in rows] == [_secs(t) * 1000 for t in market.index[-720:]]
    # With a recent `since` only the entries after it come, still ending with the forming candle.
    recent = exchange.fetch_ohlcv("BTC/USD", "1h", since=_secs(market.index[-5]) * 1000)
    assert [r[0] for r in recent] == [_secs(t) * 1000 for t in market.index[-5:]]
    body = server.requests_for("OHLC")[-1]
    assert body.params["since"] == str(_secs(market.index[-6]))


def test_forming_candle_is_synthesised_when_now_is_past_the_served_bars(server, market):
    server.now = _secs(market.index[-1]) + 3 * HOUR_S + 60  # three bars after the last served
    rows = make_ccxt_kraken(server).fetch_ohlcv("BTC/USD", "1h", since=_secs(market.index[-3]) * 1000)
    last_close = market["close"].iloc[-1]
    assert [r[0] for r in rows[:-1]] == [_secs(t) * 1000 for t in market.index[-3:]]
    assert rows[-1][0] == (_secs(market.index[-1]) + 3 * HOUR_S) * 1000
    assert rows[-1][1:5] == [last_close] * 4 and rows[-1][5] == 0.0
    assert make_ccxt_kraken(server).fetch_time() == server.now * 1000


# --------------------------------------------------------------------------- never truncated silently
def test_fetch_refuses_history_that_starts_later_than_asked(server, market, tmp_path):
    with pytest.raises(DataError) as info:
        fetch.fetch_ohlcv(make_ccxt_kraken(server), "BTC/USD", "1h", since="2024-01-01",
                          cache_dir=tmp_path, progress=False)
    message = str(info.value)
    available = market.index[-720]  # the oldest entry Kraken serves (the forming one is last)
    assert message.startswith("kraken BTC/USD 1h: history requested from "
                              "2024-01-01T00:00:00+00:00 but the exchange's history starts at "
                              f"{available.isoformat()}")
    assert "720 most recent" in message
    assert "--allow-partial" in message and "--from-trades" in message
    assert not cache_path(tmp_path, "kraken", "BTC/USD", "1h").exists()


def test_one_missing_head_bar_is_a_gap_not_a_refusal(server, market, tmp_path):
    since = market.index[-721]  # one bar before what Kraken serves: tolerated (one bar)
    df = fetch.fetch_ohlcv(make_ccxt_kraken(server), "BTC/USD", "1h", since=since,
                           cache_dir=tmp_path, progress=False)
    _same_rows(df, market.iloc[-720:-1])
    assert "partial_history" not in df.attrs


def test_allow_partial_is_recorded_in_attrs_cache_and_data_info(server, market, tmp_path):
    df = fetch.fetch_ohlcv(make_ccxt_kraken(server), "BTC/USD", "1h", since="2024-01-01",
                           cache_dir=tmp_path, progress=False, allow_partial=True)
    _same_rows(df, market.iloc[-720:-1])  # the forming candle (last entry) is never kept
    note = df.attrs["partial_history"]
    assert "2024-01-01 00:00:00+00:00" in note and str(market.index[-720]) in note
    path = cache_path(tmp_path, "kraken", "BTC/USD", "1h")
    assert "2024-01-01" in read_cache(path).attrs["partial_history"]

    info = runner.invoke(app, ["data", "info", str(path)])
    assert info.exit_code == 0, info.output
    lines = info.output.splitlines()
    assert "exchange: kraken" in lines and "symbol: BTC/USD" in lines
    assert "timeframe: 1h" in lines and "source: ccxt" in lines
    assert any(line.startswith("PARTIAL HISTORY") and "2024-01-01" in line for line in lines)

    # Served from that cache later: still refused without the flag, and without a request.
    server.clear_requests()
    with pytest.raises(DataError, match="but the cache starts at"):
        fetch.load_exchange("kraken", "BTC/USD", "1h", since="2024-01-01", cache_dir=tmp_path)
    assert server.requests == []
    again = fetch.load_exchange("kraken", "BTC/USD", "1h", since="2024-01-01",
                                cache_dir=tmp_path, allow_partial=True)
    _same_rows(again, df)
    assert again.attrs["partial_history"] == (
        f"requested from 2024-01-01 00:00:00+00:00, data from {market.index[-720]}")


def test_cache_asked_for_an_earlier_start_refuses(server, market, tmp_path, monkeypatch):
    recent = market.index[-300]
    fetch.fetch_ohlcv(make_ccxt_kraken(server), "BTC/USD", "1h", since=recent,
                      cache_dir=tmp_path, progress=False)
    path = cache_path(tmp_path, "kraken", "BTC/USD", "1h")
    before = path.read_bytes()
    monkeypatch.setenv("QUANTLIB_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("QUANTLIB_KRAKEN_API_URL", server.url)
    with pytest.raises(DataError, match="requested from 2024-01-01T00:00:00"):
        load("kraken:BTC/USD:1h:2024-01-01")
    assert path.read_bytes() == before  # the refusal wrote nothing
    df = load("kraken:BTC/USD:1h:2024-01-01", allow_partial=True)
    _same_rows(df, market.iloc[-720:-1])
    assert df.attrs["source_string"] == "kraken:BTC/USD:1h:2024-01-01"
    assert "partial_history" in df.attrs


def test_a_cache_left_too_long_is_not_extended_with_a_hole(market, tmp_path, monkeypatch):
    first = market.iloc[:1000]
    monkeypatch.setattr(fetch, "_now_ms", lambda: (_secs(first.index[-1]) + 600) * 1000)
    with KrakenServer(first) as server:
        fetch.fetch_ohlcv(make_ccxt_kraken(server), "BTC/USD", "1h", since=first.index[500],
                          cache_dir=tmp_path, progress=False)
        path = cache_path(tmp_path, "kraken", "BTC/USD", "1h")
        before = path.read_bytes()
        # 1000 hours later Kraken's 720 recent candles no longer reach the cache's end.
        server.set_ohlcv(market, timeframe="1h")
        monkeypatch.setattr(fetch, "_now_ms", lambda: (_secs(market.index[-1]) + 600) * 1000)
        with pytest.raises(DataError) as info:
            fetch.fetch_ohlcv(make_ccxt_kraken(server), "BTC/USD", "1h", since=first.index[500],
                              cache_dir=tmp_path, progress=False)
        assert (f"history requested from {first.index[-1].isoformat()} but the exchange's "
                f"history starts at {market.index[-720].isoformat()}") in str(info.value)
        assert path.read_bytes() == before
        df = fetch.fetch_ohlcv(make_ccxt_kraken(server), "BTC/USD", "1h", since=first.index[500],
                               cache_dir=tmp_path, progress=False, allow_partial=True)
    # Accepted: the hole stays a hole (a gap), nothing invented.
    want = pd.concat([first.iloc[500:-1], market.iloc[-720:-1]])
    _same_rows(df, want)
    assert validate_ohlcv(df, "1h").n_missing == len(market) - 720 - (len(first) - 1)
    assert df.attrs["partial_history"] == (f"requested from {first.index[-1].isoformat()}, the "
                                           f"exchange served from {market.index[-720].isoformat()}")


def test_cli_refuses_then_accepts_with_allow_partial(server, market, tmp_path):
    args = ["data", "fetch", "--exchange", "kraken", "--symbol", "BTC/USD", "--timeframe", "1h",
            "--since", "2024-01-01", "--cache-dir", str(tmp_path), "--base-url", server.url,
            "--no-progress"]
    refused = runner.invoke(app, args)
    assert refused.exit_code == 1
    assert "error: kraken BTC/USD 1h: history requested from 2024-01-01" in refused.stderr
    assert "Traceback" not in refused.output
    accepted = runner.invoke(app, [*args, "--allow-partial"])
    assert accepted.exit_code == 0, accepted.output
    assert "kraken:BTC/USD:1h:2024-01-01: 719 bars" in accepted.output
    assert "PARTIAL HISTORY" in accepted.output


# --------------------------------------------------------------------------- closed candles
def test_last_entry_dropped_by_kraken_rule_and_server_clock(market, tmp_path, monkeypatch):
    short = market.iloc[:300]
    # The local clock is ten days ahead: by it, every served candle has closed. The server's
    # clock is 10 minutes into bar 200, so bar 200 is forming and 201.. do not exist yet.
    monkeypatch.setattr(fetch, "_now_ms", lambda: (_secs(short.index[-1]) + 240 * HOUR_S) * 1000)
    with KrakenServer(short) as server:
        server.now = _secs(short.index[200]) + 600
        df = fetch.fetch_ohlcv(make_ccxt_kraken(server), "BTC/USD", "1h", since=START,
                               cache_dir=tmp_path, progress=False)
        assert len(server.requests_for("Time")) == 1
        _same_rows(df, short.iloc[:200])

        # Kraken's rule, not a clock, drops the last entry: with the server 1 s after bar 299
        # opened, bar 299 is the forming candle and is not stored although the local clock
        # says it closed days ago.
        server.now = _secs(short.index[-1]) + 1
        df2 = fetch.fetch_ohlcv(make_ccxt_kraken(server), "BTC/USD", "1h", since=START,
                                cache_dir=tmp_path, progress=False)
        _same_rows(df2, short.iloc[:-1])


def test_closed_rules_are_declared_per_exchange():
    assert fetch.CLOSED_CANDLE_RULES["kraken"] == "last_entry"
    assert fetch.CLOSED_CANDLE_RULES.get("binance", "clock") == "clock"
    assert "720" in fetch.SHORT_OHLC_HISTORY["kraken"]


# --------------------------------------------------------------------------- data info
def test_data_info_names_the_market_of_a_cache_file(server, market, tmp_path):
    fetch.fetch_ohlcv(make_ccxt_kraken(server), "BTC/USD", "1h", since=market.index[-100],
                      cache_dir=tmp_path, progress=False)
    path = cache_path(tmp_path, "kraken", "BTC/USD", "1h")
    out = runner.invoke(app, ["data", "info", str(path)])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert {"source: ccxt", "exchange: kraken", "symbol: BTC/USD", "timeframe: 1h"} <= set(lines)
    assert "exchange: file" not in lines and "symbol: BTC-USD_1h" not in lines


def test_data_info_falls_back_to_the_cache_path(tmp_path):
    df = _market(50).iloc[:-1]
    df.attrs = {}
    path = tmp_path / "binance" / "ETH-EUR_4h.parquet"
    path.parent.mkdir()
    df.iloc[::4].to_parquet(path)  # written by hand: no quantlib metadata in the file
    assert stored_metadata(path) == {"exchange": "binance", "symbol": "ETH/EUR",
                                     "timeframe": "4h"}
    out = runner.invoke(app, ["data", "info", str(path)])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert {"exchange: binance", "symbol: ETH/EUR", "timeframe: 4h"} <= set(lines)
    plain = tmp_path / "mydata.parquet"
    df.to_parquet(plain)
    assert stored_metadata(plain) == {}


# --------------------------------------------------------------------------- reports show it
def test_report_header_and_record_data_show_partial_history(server, market, tmp_path,
                                                            monkeypatch):
    from quantlib.report import html as report_html
    from quantlib.report import record

    df = fetch.fetch_ohlcv(make_ccxt_kraken(server), "BTC/USD", "1h", since="2024-01-01",
                           cache_dir=tmp_path, progress=False, allow_partial=True)
    shown: list[dict] = []
    monkeypatch.setattr(record, "_display", lambda: lambda bundle, raw: shown.append(bundle))
    payload = record.record_data(df)
    assert payload["partial_history"] == df.attrs["partial_history"]
    assert "PARTIAL HISTORY" in shown[0]["text/html"]
    header = {"notebook": "01_data", "param_set": "default", "run_id": "r1", "data": payload,
              "source": df.attrs["source_string"]}
    page = report_html._header_html(header)
    assert "PARTIAL HISTORY: requested from 2024-01-01 00:00:00+00:00" in page
    # A report handed the cache as a file (file:PATH) still shows the flag.
    from_file = load(f"file:{cache_path(tmp_path, 'kraken', 'BTC/USD', '1h')}")
    assert "2024-01-01" in from_file.attrs["partial_history"]
    assert "PARTIAL HISTORY" in report_html._header_html(
        {**header, "data": record.record_data(from_file)})
    full = dict(payload)
    full.pop("partial_history")
    assert "PARTIAL HISTORY" not in report_html._header_html({**header, "data": full})
