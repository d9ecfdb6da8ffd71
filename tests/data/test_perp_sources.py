"""Source strings of swaps (BASE/QUOTE:SETTLE) and of dates with a time of day parse back."""

from __future__ import annotations

import pandas as pd
import pytest

from quantlib.data.fetch import _date_text
from quantlib.data.sources import parse_source


@pytest.mark.parametrize("text, symbol, timeframe, since, until", [
    ("binanceusdm:BTC/USDT:USDT:1h:2024-01-01", "BTC/USDT:USDT", "1h", "2024-01-01", None),
    ("binanceusdm:ETH/USDT:USDT:8h", "ETH/USDT:USDT", "8h", None, None),
    ("kraken:BTC/USD:1h:2024-01-01T12:00:2024-02-01", "BTC/USD", "1h", "2024-01-01 12:00",
     "2024-02-01"),
    ("binanceusdm:BTC/USDT:USDT:4h:2024-01-01T12:00:30:2024-02-01T06:15", "BTC/USDT:USDT", "4h",
     "2024-01-01 12:00:30", "2024-02-01 06:15"),
])
def test_swap_symbols_and_times_of_day(text, symbol, timeframe, since, until):
    parsed = parse_source(text)
    assert (parsed.symbol, parsed.timeframe) == (symbol, timeframe)
    as_utc = lambda value: pd.Timestamp(value, tz="UTC") if value else None  # noqa: E731
    assert parsed.since == as_utc(since) and parsed.until == as_utc(until)


@pytest.mark.parametrize("minutes", [0, 15, 8 * 60, 23 * 60 + 45])
def test_the_source_strings_downloads_write_parse_back(minutes):
    since = pd.Timestamp("2024-03-05", tz="UTC") + pd.Timedelta(minutes=minutes)
    until = since + pd.Timedelta(days=2, hours=3)
    text = f"binanceusdm:BTC/USDT:USDT:1h:{_date_text(since.value // 10**6)}:" \
           f"{_date_text(until.value // 10**6)}"
    parsed = parse_source(text)
    assert (parsed.since, parsed.until) == (since, until)


# Malformed swap strings are cases of test_sources.py's table of malformed strings.
