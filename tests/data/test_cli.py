"""``quantlib data fetch|validate|info`` through typer's CliRunner (fetch against loopback Kraken)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from quantlib.cli import app
from quantlib.data import fetch, synthetic_ohlcv
from quantlib.data.cache import cache_path, read_cache
from tests.support.kraken_server import KrakenServer

runner = CliRunner()
START = pd.Timestamp("2024-01-01", tz="UTC")


def _market(n_closed: int) -> pd.DataFrame:
    df = synthetic_ohlcv(n_closed + 1, "1h", seed=11, start=START).ohlcv
    df.attrs["timeframe"] = "1h"
    return df


@pytest.fixture
def market():
    return _market(300)


@pytest.fixture
def server(market, monkeypatch):
    now_ms = market.index[-1].value // 1_000_000 + 600_000  # 10 minutes into the last bar
    monkeypatch.setattr(fetch, "_now_ms", lambda: now_ms)
    with KrakenServer(market) as srv:
        yield srv


def _fetch_args(server, tmp_path, *extra):
    return ["data", "fetch", "--exchange", "kraken", "--symbol", "BTC/USD", "--timeframe", "1h",
            "--since", "2024-01-01", "--cache-dir", str(tmp_path), "--base-url", server.url,
            "--no-progress", *extra]


def test_root_help_lists_data_commands():
    result = runner.invoke(app, ["data", "--help"])
    assert result.exit_code == 0
    for command in ("fetch", "validate", "info"):
        assert command in result.output
    assert "base-url" not in runner.invoke(app, ["data", "fetch", "--help"]).output


def test_fetch_fills_the_cache(server, market, tmp_path):
    result = runner.invoke(app, _fetch_args(server, tmp_path))
    assert result.exit_code == 0, result.output
    assert "kraken:BTC/USD:1h:2024-01-01: 300 bars" in result.output
    cached = read_cache(cache_path(tmp_path, "kraken", "BTC/USD", "1h"))
    assert cached.index.equals(market.index[:-1])
    np.testing.assert_array_equal(cached.to_numpy(), market.iloc[:-1].to_numpy())
    assert len(server.requests_for("OHLC")) == 1


def test_fetch_failure_is_one_line_exit_1(server, tmp_path, monkeypatch):
    monkeypatch.setattr(fetch, "_sleep", lambda seconds: None)
    server.inject_fault("OHLC", "http", status=502, times=6)
    result = runner.invoke(app, _fetch_args(server, tmp_path, "--max-retries", "1"))
    assert result.exit_code == 1
    assert "error: kraken BTC/USD 1h" in result.stderr and "gave up after 2 attempts" in result.stderr
    assert "Traceback" not in result.output
    assert not cache_path(tmp_path, "kraken", "BTC/USD", "1h").exists()


def test_validate_reports_gaps(tmp_path):
    df = _market(100).iloc[:-1]
    dropped = df.index[40:43]
    path = tmp_path / "gappy.csv"
    df.drop(dropped).to_csv(path, index_label="timestamp")
    result = runner.invoke(app, ["data", "validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "valid OHLCV" in result.output
    assert "n_missing_bars: 3" in result.output and "n_bars: 97" in result.output
    assert f"{dropped[0]} .. {dropped[-1]}  (3 missing bars)" in result.output


def test_validate_invalid_data_exit_1_names_row_and_column(tmp_path):
    df = _market(50).iloc[:-1].copy()
    df.iloc[7, df.columns.get_loc("high")] = df.iloc[7]["low"] * 0.9
    path = tmp_path / "bad.csv"
    df.to_csv(path, index_label="timestamp")
    result = runner.invoke(app, ["data", "validate", str(path)])
    assert result.exit_code == 1
    assert "row 7" in result.stderr and str(df.index[7]) in result.stderr
    assert "'high'" in result.stderr and "bad.csv" in result.stderr
    assert "Traceback" not in result.output

    missing = runner.invoke(app, ["data", "validate", str(tmp_path / "nope.csv")])
    assert missing.exit_code == 1 and "file not found" in missing.stderr


def test_info_describes_a_parquet_file(tmp_path):
    df = _market(240).iloc[:-1]
    path = tmp_path / "btc.parquet"
    df.to_parquet(path)
    result = runner.invoke(app, ["data", "info", str(path)])
    assert result.exit_code == 0, result.output
    assert "bars: 240  timeframe: 1h" in result.output
    assert f"span: {df.index[0]} .. {df.index[-1]}" in result.output
    assert f"last {df['close'].iloc[-1]:.6g}" in result.output
    assert f"max {df['high'].max():.6g}" in result.output
    assert "gaps: 0 (0 missing bars)" in result.output
