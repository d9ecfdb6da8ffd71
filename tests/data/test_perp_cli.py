"""``quantlib data info|validate`` on perp sources and funding files (loopback Binance USD-M)."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from quantlib.cli import app
from quantlib.data import fetch
from quantlib.data.perp_fetch import funding_cache_path
from quantlib.data.synthetic import synthetic_funding, synthetic_mark, synthetic_ohlcv
from tests.support.binanceusdm_server import BinanceUsdmServer

runner = CliRunner()
SYMBOL = "BTC/USDT:USDT"
SOURCE = f"binanceusdm:{SYMBOL}:8h:2024-01-01"


@pytest.fixture
def server(tmp_path, monkeypatch):
    """60 8-hour bars (the last one forming), payments 20..22 missing."""
    bars = synthetic_ohlcv(60, "8h", seed=2).ohlcv
    funding = synthetic_funding(bars, seed=2)
    with BinanceUsdmServer() as srv:
        srv.set_klines(bars, symbol=SYMBOL)
        srv.set_klines(synthetic_mark(bars, seed=2), symbol=SYMBOL, price="mark")
        srv.set_funding(funding.drop(funding.index[20:23]), symbol=SYMBOL)
        srv.now_ms = int(bars.index[-1].value // 1_000_000) + 60_000
        monkeypatch.setenv("QUANTLIB_DATA_DIR", str(tmp_path))
        monkeypatch.setenv("QUANTLIB_BINANCEUSDM_API_URL", srv.url)
        monkeypatch.setattr(fetch, "_now_ms", lambda: srv.now_ms + 1000)
        yield srv


def test_info_on_a_perp_source_shows_interval_and_gaps(server):
    result = runner.invoke(app, ["data", "info", SOURCE])
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"source: {SOURCE}" in out
    assert "funding_interval: 8h" in out and "n_payments: 56" in out  # 59 closed - 3 missing
    assert "n_missing_payments: 3" in out
    assert "2024-01-07 16:00:00+00:00 .. 2024-01-08 08:00:00+00:00  (3 missing payments)" in out
    assert out.count("n_bars: 59") == 2  # candles and mark
    assert "mark bars missing where candles exist: 0" in out


def test_validate_a_funding_cache_file_and_a_damaged_one(server, tmp_path):
    assert runner.invoke(app, ["data", "validate", SOURCE]).exit_code == 0
    path = funding_cache_path(tmp_path, "binanceusdm", SYMBOL)
    result = runner.invoke(app, ["data", "validate", str(path)])
    assert result.exit_code == 0, result.output
    assert f"{path}: valid funding" in result.output and "n_missing_payments: 3" in result.output
    info = runner.invoke(app, ["data", "info", str(path)])
    assert "symbol: BTC/USDT:USDT" in info.output and "funding_interval: 8h" in info.output
    frame = pd.read_parquet(path)
    frame.iloc[5, 0] = 2.0  # a percent where a fraction belongs
    frame.to_parquet(path)
    bad = runner.invoke(app, ["data", "validate", str(path)])
    assert bad.exit_code == 1
    assert f"error: {path}: funding row 5 (timestamp 2024-01-02 16:00:00+00:00), field " \
           "'funding_rate' is 2.0" in bad.output


def test_sample_needs_perp_and_spot_sources_are_refused():
    result = runner.invoke(app, ["data", "info", "sample:bars=100", "--perp"])
    assert result.exit_code == 0, result.output
    assert "n_payments: 13" in result.output  # 100 hours from midnight: 00/08/16 x 4 + 1
    spot = runner.invoke(app, ["data", "info", "kraken:BTC/USD:1h:2024-01-01"])
    assert spot.exit_code == 1 and "not a perpetual-swap source" in spot.output
    assert "Traceback" not in spot.output


def test_fetch_perp_fills_three_caches_through_base_url(server, tmp_path, monkeypatch):
    monkeypatch.delenv("QUANTLIB_BINANCEUSDM_API_URL")  # --base-url alone aims ccxt
    cache = tmp_path / "cache"
    args = ["data", "fetch", "--exchange", "binanceusdm", "--symbol", SYMBOL, "--timeframe",
            "8h", "--since", "2024-01-02 08:00", "--cache-dir", str(cache), "--base-url",
            server.url, "--no-progress", "--perp"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    # From 2024-01-02 08:00: bars 4..58 closed (55), the payments at their opens but 20..22.
    assert ("binanceusdm:BTC/USDT:USDT:8h:2024-01-02T08:00: 55 bars, 55 mark bars, "
            "52 funding payments") in result.output
    assert funding_cache_path(cache, "binanceusdm", SYMBOL).exists()
    assert "n_missing_payments: 3" in result.output
    server.requests.clear()
    assert runner.invoke(app, args).exit_code == 0
    assert not server.requests_for("/fapi/v1/fundingRate")  # all cached: nothing asked again
    both = runner.invoke(app, [*args, "--from-trades"])
    assert both.exit_code == 1 and "--perp and --from-trades do not combine" in both.output


def test_validate_lists_an_interval_change(tmp_path):
    eight = pd.date_range("2024-01-01", periods=6, freq="8h", tz="UTC", name="timestamp")
    four = pd.date_range("2024-01-03", periods=6, freq="4h", tz="UTC", name="timestamp")
    path = tmp_path / "funding.parquet"
    pd.DataFrame({"funding_rate": [1e-4] * 12}, index=eight.append(four)).to_parquet(path)
    result = runner.invoke(app, ["data", "validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "n_interval_changes: 1" in result.output and "n_missing_payments: 0" in result.output
    assert "funding interval 8h -> 4h from 2024-01-03 00:00:00+00:00" in result.output
