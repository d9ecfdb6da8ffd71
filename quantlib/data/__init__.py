"""Market data: the canonical OHLCV frame, validation, loaders, resampling, the synthetic default
market, data source strings and exchange data through ccxt.

Every public name is imported with the package (no lazy names): whatever imports
``quantlib.data`` needs pandas anyway, and neither the trading process nor ``quantlib --help``
imports it.

Examples
--------
>>> from quantlib.data import load, validate_ohlcv
>>> df = load("sample:bars=200")
>>> validate_ohlcv(df).n_bars
200
"""

# Eager: each path that imports quantlib.data loads pandas anyway (loaders, validation,
# `quantlib data ...`, `quantlib backtest --strategy`); the package's other modules add ~0.1 s
# to `quantlib data validate` (benchmarks/bench_startup.py).
from quantlib.core.timeframes import bars_per_year, timeframe_to_seconds
from quantlib.data.fetch import fetch_ohlcv
from quantlib.data.io import load_ohlcv, save_ohlcv
from quantlib.data.ohlcv import OHLCV_COLUMNS, ValidationSummary, find_gaps, validate_ohlcv
from quantlib.data.perp import load_perp
from quantlib.data.perp_data import FundingSummary, PerpData, validate_funding
from quantlib.data.resample import resample
from quantlib.data.sources import DataSource, load, parse_source, source_from_parts
from quantlib.data.synthetic import (
    SyntheticMarket,
    synthetic_funding,
    synthetic_mark,
    synthetic_ohlcv,
)
from quantlib.data.timeframes import timeframe_to_timedelta
from quantlib.errors import DataError

__all__ = [
    "OHLCV_COLUMNS",
    "DataError",
    "DataSource",
    "FundingSummary",
    "PerpData",
    "SyntheticMarket",
    "ValidationSummary",
    "bars_per_year",
    "fetch_ohlcv",
    "find_gaps",
    "load",
    "load_ohlcv",
    "load_perp",
    "parse_source",
    "resample",
    "save_ohlcv",
    "source_from_parts",
    "synthetic_funding",
    "synthetic_mark",
    "synthetic_ohlcv",
    "timeframe_to_seconds",
    "timeframe_to_timedelta",
    "validate_funding",
    "validate_ohlcv",
]
