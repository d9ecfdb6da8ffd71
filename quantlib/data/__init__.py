"""Market data: the canonical OHLCV frame, validation, loaders, resampling, the synthetic default
market, data source strings and exchange data through ccxt.

Examples
--------
>>> from quantlib.data import load, validate_ohlcv
>>> df = load("sample:bars=200")
>>> validate_ohlcv(df).n_bars
200
"""

from quantlib._lazy import lazy_exports
from quantlib.core.timeframes import bars_per_year, timeframe_to_seconds
from quantlib.errors import DataError

# Loaded on first use: pandas (which the loaders need) costs ~0.5 s and ~100 MB, and a command
# that only names a data source (e.g. `quantlib --help`) should not pay for it.
_LAZY = {
    "load_ohlcv": "io", "save_ohlcv": "io",
    "OHLCV_COLUMNS": "ohlcv", "ValidationSummary": "ohlcv", "find_gaps": "ohlcv",
    "validate_ohlcv": "ohlcv",
    "resample": "resample",
    "DataSource": "sources", "load": "sources", "parse_source": "sources",
    "source_from_parts": "sources",
    "SyntheticMarket": "synthetic", "synthetic_ohlcv": "synthetic",
    "synthetic_funding": "synthetic", "synthetic_mark": "synthetic",
    "PerpData": "perp_data", "FundingSummary": "perp_data", "load_perp": "perp",
    "validate_funding": "perp_data",
    "timeframe_to_timedelta": "timeframes",
    "fetch_ohlcv": "fetch",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)


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
