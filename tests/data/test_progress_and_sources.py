"""Audit gaps of the data layer: the download progress bar, ``load()`` of an exchange source
(cache miss -> loopback fetch -> cache hit), the validator's full error messages and the root
``quantlib --help``.

The progress bar is drawn by rich's default console, which draws nothing when its output is not a
terminal (pytest's capture is not one). The tests install a console that writes to stdout as a
terminal would, so what an analyst's terminal receives is what the test reads.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
import rich
from rich.console import Console
from typer.testing import CliRunner

from quantlib.data import DataError, fetch, load, synthetic_ohlcv, validate_ohlcv
from quantlib.data.cache import read_cache
from tests.support.kraken_server import KrakenServer, make_ccxt_kraken

START = pd.Timestamp("2024-01-01", tz="UTC")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _market(n_closed: int, seed: int = 5) -> pd.DataFrame:
    """``n_closed`` closed hourly bars from START plus the still-open bar (last row)."""
    df = synthetic_ohlcv(n_closed + 1, "1h", seed=seed, start=START).ohlcv
    df.attrs["timeframe"] = "1h"
    return df


def _freeze_now_in_last_bar(monkeypatch, market: pd.DataFrame) -> None:
    now_ms = market.index[-1].value // 1_000_000 + 17 * 60_000  # 17 minutes into the open bar
    monkeypatch.setattr(fetch, "_now_ms", lambda: now_ms)


def _same_rows(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert got.index.equals(want.index)
    np.testing.assert_array_equal(got.to_numpy(), want.to_numpy())


@pytest.fixture
def terminal_stdout(monkeypatch):
    """rich's default console replaced by one that behaves as a 120-column terminal on stdout."""
    monkeypatch.setattr(rich, "_console", Console(force_terminal=True, width=120))


# --------------------------------------------------------------------------- 1. progress bar
def test_long_download_draws_a_progress_bar_with_the_bar_count(monkeypatch, tmp_path, capsys,
                                                              terminal_stdout):
    market = _market(2500)  # > 3 pages of 720: a "long" download (deep history: page forward)
    _freeze_now_in_last_bar(monkeypatch, market)
    with KrakenServer(market, ohlc_rule="page_forward") as server:
        df = fetch.fetch_ohlcv(make_ccxt_kraken(server), "BTC/USD", "1h", since=START,
                               cache_dir=tmp_path, progress=True)
        assert len(server.requests_for("OHLC")) == 4
    _same_rows(df, market.iloc[:-1])
    captured = capsys.readouterr()
    text = ANSI.sub("", captured.out)
    # The bar names the market and counts bars (not pages): 0 of 2500 at first, 2500 at the end.
    assert "kraken BTC/USD 1h" in text
    assert "0/2500" in text
    assert "2500/2500" in text
    assert "━" in text  # the bar itself
    assert captured.err == ""


def test_progress_disabled_writes_nothing(monkeypatch, tmp_path, capsys, terminal_stdout):
    market = _market(2500)
    _freeze_now_in_last_bar(monkeypatch, market)
    with KrakenServer(market, ohlc_rule="page_forward") as server:
        df = fetch.fetch_ohlcv(make_ccxt_kraken(server), "BTC/USD", "1h", since=START,
                               cache_dir=tmp_path, progress=False)
    _same_rows(df, market.iloc[:-1])
    assert capsys.readouterr() == ("", "")


def test_short_download_draws_no_bar(monkeypatch, tmp_path, capsys, terminal_stdout):
    market = _market(300)  # one page: the bar is only for long downloads
    _freeze_now_in_last_bar(monkeypatch, market)
    with KrakenServer(market) as server:
        fetch.fetch_ohlcv(make_ccxt_kraken(server), "BTC/USD", "1h", since=START,
                          cache_dir=tmp_path, progress=True)
    assert capsys.readouterr() == ("", "")


# --------------------------------------------------------------------------- 2. load(source)
def test_load_exchange_source_fetches_when_missing_then_serves_the_cache(monkeypatch, tmp_path):
    market = _market(2000)
    _freeze_now_in_last_bar(monkeypatch, market)
    cache_root = tmp_path / "cache"
    monkeypatch.chdir(tmp_path)  # even a relative default ./data would land in tmp_path
    monkeypatch.setenv("QUANTLIB_DATA_DIR", str(cache_root))
    cache_file = cache_root / "kraken" / "BTC-USD_1h.parquet"
    with KrakenServer(market, ohlc_rule="page_forward") as server:  # deep history
        monkeypatch.setenv("QUANTLIB_KRAKEN_API_URL", server.url)
        assert not cache_file.exists()

        first = load("kraken:BTC/USD:1h:2024-01-01")
        # Cache miss: 2000 closed bars fetched in pages of 719 + the forming one -> 3 requests.
        assert len(server.requests_for("OHLC")) == 3
        _same_rows(first, market.iloc[:-1])
        assert first.attrs["source"] == "ccxt"
        assert first.attrs["source_string"] == "kraken:BTC/USD:1h:2024-01-01"
        assert cache_file.exists()
        _same_rows(read_cache(cache_file), market.iloc[:-1])
        assert sorted(p.name for p in tmp_path.iterdir()) == ["cache"]  # nothing else written

        server.clear_requests()
        second = load("kraken:BTC/USD:1h:2024-01-01")
        assert server.requests_for("OHLC") == []
        assert server.requests == []  # not even the market list: the cache answered
        _same_rows(second, first)
        assert second.attrs == first.attrs
        assert server.errors == []


def test_load_refuses_a_non_loopback_api_url(monkeypatch, tmp_path):
    monkeypatch.setenv("QUANTLIB_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("QUANTLIB_KRAKEN_API_URL", "http://192.0.2.1:8080")
    with pytest.raises(DataError, match="QUANTLIB_KRAKEN_API_URL.*must be a loopback address"):
        load("kraken:BTC/USD:1h:2024-01-01")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- 3. DataError text
def _frame() -> pd.DataFrame:
    """Six valid hourly bars from 2024-03-01 00:00 UTC with hand-picked prices."""
    index = pd.date_range("2024-03-01", periods=6, freq="h", tz="UTC", name="timestamp")
    return pd.DataFrame({"open": [100.0, 101.0, 102.0, 103.0, 104.0, 105.0],
                         "high": [102.0, 103.0, 104.0, 105.0, 106.0, 107.0],
                         "low": [99.0, 100.0, 101.0, 102.0, 103.0, 104.0],
                         "close": [101.0, 102.0, 103.0, 104.0, 105.0, 106.0],
                         "volume": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]}, index=index)


def _message(df: pd.DataFrame, **kwargs) -> str:
    with pytest.raises(DataError) as info:
        validate_ohlcv(df, **kwargs)
    return str(info.value)


def test_valid_frame_passes():
    assert validate_ohlcv(_frame()).n_bars == 6


def test_unsorted_timestamps_message():
    df = _frame()
    df.index = df.index[[0, 1, 3, 2, 4, 5]]
    assert _message(df) == ("row 3 (timestamp 2024-03-01 02:00:00+00:00), column 'timestamp': "
                            "not sorted (earlier than the row before, 2024-03-01 03:00:00+00:00)")


def test_duplicate_timestamps_message():
    df = _frame()
    df.index = df.index[[0, 1, 2, 3, 3, 5]]
    assert _message(df) == ("row 4 (timestamp 2024-03-01 03:00:00+00:00), column 'timestamp': "
                            "duplicate timestamp")


def test_high_below_open_close_message():
    df = _frame()
    df.loc["2024-03-01 02:00", "high"] = 102.5  # open 102, close 103
    assert _message(df) == ("row 2 (timestamp 2024-03-01 02:00:00+00:00), column 'high': "
                            "high 102.5 is below max(open, close) = 103.0")


def test_low_above_open_close_message_counts_further_rows():
    df = _frame()
    df.loc["2024-03-01 04:00", "low"] = 104.5  # open 104, close 105
    df.loc["2024-03-01 05:00", "low"] = 105.5  # open 105, close 106
    assert _message(df) == ("row 4 (timestamp 2024-03-01 04:00:00+00:00), column 'low': "
                            "low 104.5 is above min(open, close) = 104.0 (and 1 more rows)")


def test_message_starts_with_the_name_when_given():
    df = _frame()
    df.index = df.index[[0, 1, 2, 3, 3, 5]]
    assert _message(df, name="btc.csv") == (
        "btc.csv: row 4 (timestamp 2024-03-01 03:00:00+00:00), column 'timestamp': "
        "duplicate timestamp")


# --------------------------------------------------------------------------- 4. quantlib --help
def _listed_commands(help_text: str) -> list[str]:
    """Command names of the "Commands" section of a typer/click help page (rich box or plain)."""
    lines = help_text.splitlines()
    start = next(i for i, line in enumerate(lines) if "Commands" in line)
    names = []
    for line in lines[start + 1:]:
        if line.startswith("╰") or not line.strip():
            break
        match = re.match(r"^[│|]?\s{1,2}([a-z][a-z0-9_-]*)(\s{2,}|\s*[│|]?$)", line)
        if match:
            names.append(match.group(1))
    return names


EXPECTED_COMMANDS = {"data", "backtest", "optimize", "strategy", "live", "report"}


def test_root_help_lists_every_command():
    from quantlib.cli import _command_name, app, build_app

    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0, result.output
    assert set(_listed_commands(result.output)) >= EXPECTED_COMMANDS
    # The console script builds its app from the command line: `quantlib --help` names no
    # command, so it must get every module too.
    script_app = build_app(_command_name(["--help"]))
    script_help = CliRunner().invoke(script_app, ["--help"]).output
    assert set(_listed_commands(script_help)) >= EXPECTED_COMMANDS


def test_help_parser_sees_a_missing_command():
    # Control: a reduced app (what `quantlib live ...` builds) lists only its own command.
    from quantlib.cli import build_app

    names = _listed_commands(CliRunner().invoke(build_app("live"), ["--help"]).output)
    assert names == ["live"]


def test_every_api_override_refuses_a_non_loopback_host(tmp_path, monkeypatch):
    """One rule (quantlib.core.endpoints) for the CLI's hidden --base-url, the environment
    override of load() and of the live runner's exchange: only 127.0.0.1 / localhost."""
    from typer.testing import CliRunner

    from quantlib.cli import app
    from quantlib.live.brokers.ccxt_broker import make_exchange

    out = CliRunner().invoke(app, ["data", "fetch", "--exchange", "kraken", "--symbol", "BTC/USD",
                                   "--timeframe", "1h", "--since", "2024-01-01",
                                   "--cache-dir", str(tmp_path), "--base-url",
                                   "https://192.0.2.1"])
    assert out.exit_code == 1 and "--base-url='https://192.0.2.1' must be a loopback" in out.output
    env = {"QUANTLIB_KRAKEN_API_KEY": "k", "QUANTLIB_KRAKEN_SECRET": "s",
           "QUANTLIB_KRAKEN_API_URL": "http://10.0.0.1:80"}
    with pytest.raises(DataError, match="QUANTLIB_KRAKEN_API_URL.*must be a loopback"):
        make_exchange("kraken", env)
    assert list(tmp_path.iterdir()) == []
