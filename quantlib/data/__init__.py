"""Market data: the canonical OHLCV frame, validation, loaders, resampling, the synthetic default
market, data source strings and exchange data through ccxt.

Examples
--------
>>> from quantlib.data import load, validate_ohlcv
>>> df = load("sample:bars=200")
>>> validate_ohlcv(df).n_bars
200
"""

from quantlib.data.io import load_ohlcv, save_ohlcv
from quantlib.data.ohlcv import OHLCV_COLUMNS, ValidationSummary, find_gaps, validate_ohlcv
from quantlib.data.resample import resample
from quantlib.data.sources import DataSource, load, parse_source, source_from_parts
from quantlib.data.synthetic import SyntheticMarket, synthetic_ohlcv
from quantlib.data.timeframes import bars_per_year, timeframe_to_seconds, timeframe_to_timedelta
from quantlib.errors import DataError


def fetch_ohlcv(*args, **kwargs):
    """Exchange OHLCV through ccxt with an incremental Parquet cache; see
    :func:`quantlib.data.fetch.fetch_ohlcv` (imported lazily: ccxt is slow to import)."""
    from quantlib.data.fetch import fetch_ohlcv as _fetch

    return _fetch(*args, **kwargs)


__all__ = [
    "OHLCV_COLUMNS",
    "DataError",
    "DataSource",
    "SyntheticMarket",
    "ValidationSummary",
    "bars_per_year",
    "fetch_ohlcv",
    "find_gaps",
    "load",
    "load_ohlcv",
    "parse_source",
    "resample",
    "save_ohlcv",
    "source_from_parts",
    "synthetic_ohlcv",
    "timeframe_to_seconds",
    "timeframe_to_timedelta",
    "validate_ohlcv",
]
