"""Data source strings: one parser and one loader for CLI, notebooks, reports and specs."""

from __future__ import annotations

import pandas as pd
import pytest

from quantlib.data import DataError, load, parse_source, save_ohlcv, synthetic_ohlcv


def test_sample_default_and_options():
    assert parse_source("sample").kind == "sample"
    parsed = parse_source("sample:seed=7,bars=300,timeframe=4h")
    assert parsed.options == {"seed": 7, "bars": 300, "timeframe": "4h"}
    df = load("sample:seed=7,bars=300,timeframe=4h")
    expected = synthetic_ohlcv(300, "4h", seed=7).ohlcv
    pd.testing.assert_frame_equal(df, expected)
    assert df.attrs["source"] == "synthetic"
    assert df.attrs["source_string"] == "sample:seed=7,bars=300,timeframe=4h"


def test_file_source_loads_the_file(tmp_path):
    df = synthetic_ohlcv(40, seed=2).ohlcv
    path = save_ohlcv(df, tmp_path / "b.parquet")
    loaded = load(f"file:{path}")
    assert loaded["close"].equals(df["close"]) and loaded.attrs["source"] == "file"


def test_exchange_source_parts():
    parsed = parse_source("kraken:BTC/USD:1h:2024-01-01:2024-02-01")
    assert (parsed.kind, parsed.exchange, parsed.symbol, parsed.timeframe) == (
        "exchange", "kraken", "BTC/USD", "1h")
    assert parsed.since == pd.Timestamp("2024-01-01", tz="UTC")
    assert parsed.until == pd.Timestamp("2024-02-01", tz="UTC")
    assert parse_source("binance:ETH/USDT:5m").since is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "non-empty"),
        ("sample:seed=x", "needs an integer"),
        ("sample:colour=red", "sample option 'colour=red' is not understood"),
        ("file:", "needs a path"),
        ("kraken:BTCUSD:1h", "BASE/QUOTE"),
        ("kraken:BTC/USD:1y", "timeframe '1y'"),
        ("Kraken!:BTC/USD:1h", "ccxt id"),
        ("kraken:BTC/USD:1h:yesterday", "since 'yesterday' is not a date"),
        ("kraken:BTC/USD:1h:2024-02-01:2024-01-01", "is not after since"),
        ("nonsense", "not understood"),
        # swaps (BASE/QUOTE:SETTLE) and until dates
        ("binanceusdm:BTC/USDT:USDT:1h:2024-01-01:2024-02-01:x", "is not understood"),
        ("kraken:BTC/USD:1h:2024-01-01:00", "until '00' is not a date"),
        ("binanceusdm:BTC/USDT:USDT", "timeframe 'USDT' is not understood"),
        ("binanceusdm:BTC/USDT:usdt:1h", "timeframe 'usdt' is not understood"),
        ("binanceusdm:BTCUSDT:USDT:1h", "symbol 'BTCUSDT' must look like BASE/QUOTE"),
    ],
)
def test_malformed_strings_say_what_is_wrong(text, message):
    with pytest.raises(DataError, match=message):
        parse_source(text)


def test_missing_file_source_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        load(f"file:{tmp_path / 'missing.csv'}")


def test_source_from_parts_builds_exchange_strings():
    from quantlib.data import source_from_parts

    assert source_from_parts("sample", "kraken", "BTC/USD", "1h", "2024-01-01", "2024-02-01") == \
        "kraken:BTC/USD:1h:2024-01-01:2024-02-01"
    assert source_from_parts("file:x.csv") == "file:x.csv"
    with pytest.raises(DataError, match="must be given together"):
        source_from_parts("sample", "kraken", None)
