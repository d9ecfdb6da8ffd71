"""One way to name data: source strings shared by the CLI, notebooks, reports and specs.

=========================================  ===============================================
``sample``                                 the synthetic default (seed 0, 5000 1h bars)
``sample:seed=7,bars=2000,timeframe=4h``   the synthetic market with options
``file:PATH``                              a CSV or Parquet file
``EXCHANGE:BASE/QUOTE:TF[:SINCE[:UNTIL]]`` exchange data through ccxt, served from the cache
                                           ``data/<exchange>/``, fetched when missing; built
                                           from the trade cache when it covers the span
``EXCHANGE:BASE/QUOTE:SETTLE:TF[:...]``    a perpetual swap (``binanceusdm:BTC/USDT:USDT:1h``);
                                           ``quantlib.data.perp.load_perp`` adds its mark and
                                           funding series
=========================================  ===============================================

Tests point exchange sources at a loopback server with ``QUANTLIB_<EXCHANGE>_API_URL`` (the same
override the live runner honours); it must be a 127.0.0.1 / localhost address.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pandas as pd

from quantlib.core.endpoints import api_url_override, api_url_variable, point_at_loopback
from quantlib.core.timeframes import timeframe_to_seconds
from quantlib.data.fetch import _resolve_exchange, load_exchange
from quantlib.data.io import load_ohlcv
from quantlib.data.synthetic import synthetic_ohlcv
from quantlib.errors import DataError, ParameterError

_SAMPLE_KEYS = {"seed": int, "bars": int, "timeframe": str}
_SYMBOL = re.compile(r"^[A-Za-z0-9.\-_]+/[A-Za-z0-9.\-_]+(:[A-Z0-9]+)?$")
_EXCHANGE = re.compile(r"^[a-z][a-z0-9_]*$")
_SETTLE = re.compile(r"^[A-Z0-9]+$")
_HAS_HOUR = re.compile(r"[T ]\d{1,2}(:\d{2})?$")  # a date ending in a time of day so far
_TIME_TAIL = re.compile(r"^\d{2}(\.\d+)?(Z|[+-]\d{2})?$")  # minutes or seconds


@dataclass(frozen=True)
class DataSource:
    """A parsed data source string."""

    kind: str  # "sample" | "file" | "exchange"
    text: str
    options: dict = field(default_factory=dict)
    path: str | None = None
    exchange: str | None = None
    symbol: str | None = None
    timeframe: str | None = None
    since: pd.Timestamp | None = None
    until: pd.Timestamp | None = None


def _parse_date(value: str, what: str, text: str) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise DataError(f"data source {text!r}: {what} {value!r} is not a date "
                        "(expected e.g. 2024-01-01 or 2024-01-01T12:00)") from None
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _parse_sample(text: str, rest: str) -> DataSource:
    options: dict = {}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, sep, value = item.partition("=")
        if not sep or key not in _SAMPLE_KEYS:
            raise DataError(f"data source {text!r}: sample option {item!r} is not understood; "
                            f"expected key=value with keys {sorted(_SAMPLE_KEYS)}")
        try:
            options[key] = _SAMPLE_KEYS[key](value)
        except ValueError:
            raise DataError(f"data source {text!r}: sample option {key!r} needs an integer, "
                            f"got {value!r}") from None
    if "timeframe" in options:
        _check_timeframe(options["timeframe"], text)
    return DataSource("sample", text, options=options)


def _check_timeframe(timeframe: str, text: str) -> None:
    try:
        timeframe_to_seconds(timeframe)
    except ParameterError as exc:
        raise DataError(f"data source {text!r}: {exc}") from None


def _join_settle(parts: list[str]) -> list[str]:
    """``[ex, "BTC/USDT", "USDT", "1h", ...]`` -> ``[ex, "BTC/USDT:USDT", "1h", ...]``: a swap's
    settle currency (ccxt's ``BASE/QUOTE:SETTLE``) is the part after the pair that is not a
    timeframe."""
    if len(parts) >= 4 and _SETTLE.match(parts[2]) and "/" in parts[1]:
        try:
            timeframe_to_seconds(parts[2])
        except ParameterError:
            return [parts[0], f"{parts[1]}:{parts[2]}", *parts[3:]]
    return parts


def _join_times(parts: list[str]) -> list[str]:
    """Glue the minutes and seconds of a date with a time of day back on: ``["2024-01-01T12",
    "00"]`` -> ``["2024-01-01T12:00"]`` (sources name dates like that, e.g. the
    ``source_string`` of a download starting mid-day)."""
    out = parts[:3]
    for part in parts[3:]:
        if out[3:] and _TIME_TAIL.match(part) and _HAS_HOUR.search(out[-1]):
            out[-1] = f"{out[-1]}:{part}"
        else:
            out.append(part)
    return out


def parse_source(text: str) -> DataSource:
    """Parse a data source string; raise DataError saying what is malformed.

    Examples
    --------
    >>> parse_source("kraken:BTC/USD:1h:2024-01-01").symbol
    'BTC/USD'
    >>> parse_source("sample:seed=3").options
    {'seed': 3}
    >>> parse_source("binanceusdm:BTC/USDT:USDT:1h:2024-01-01").symbol  # a swap: BASE/QUOTE:SETTLE
    'BTC/USDT:USDT'
    >>> str(parse_source("kraken:BTC/USD:1h:2024-01-01T12:00:2024-02-01").since)
    '2024-01-01 12:00:00+00:00'
    """
    if not isinstance(text, str) or not text.strip():
        raise DataError(f"data source must be a non-empty string, got {text!r}")
    text = text.strip()
    head, _, rest = text.partition(":")
    if head == "sample":
        return _parse_sample(text, rest)
    if head == "file":
        if not rest:
            raise DataError(f"data source {text!r}: 'file:' needs a path, e.g. file:data/btc.csv")
        return DataSource("file", text, path=rest)
    parts = _join_times(_join_settle(text.split(":")))
    if len(parts) < 3 or len(parts) > 5:
        raise DataError(
            f"data source {text!r} is not understood; expected 'sample[:key=value,...]', "
            "'file:PATH' or 'EXCHANGE:BASE/QUOTE[:SETTLE]:TIMEFRAME[:SINCE[:UNTIL]]' "
            "(e.g. kraken:BTC/USD:1h:2024-01-01, binanceusdm:BTC/USDT:USDT:1h:2024-01-01)"
        )
    exchange, symbol, timeframe = parts[:3]
    if not _EXCHANGE.match(exchange):
        raise DataError(f"data source {text!r}: exchange {exchange!r} must be a ccxt id like 'kraken'")
    if not _SYMBOL.match(symbol):
        raise DataError(f"data source {text!r}: symbol {symbol!r} must look like BASE/QUOTE, e.g. BTC/USD")
    _check_timeframe(timeframe, text)
    since = _parse_date(parts[3], "since", text) if len(parts) > 3 and parts[3] else None
    until = _parse_date(parts[4], "until", text) if len(parts) > 4 and parts[4] else None
    if since is not None and until is not None and until <= since:
        raise DataError(f"data source {text!r}: until {until} is not after since {since}")
    return DataSource("exchange", text, exchange=exchange, symbol=symbol, timeframe=timeframe,
                      since=since, until=until)


def source_from_parts(
    source: str | None = "sample",
    exchange: str | None = None,
    symbol: str | None = None,
    timeframe: str | None = "1h",
    start: str | None = None,
    end: str | None = None,
) -> str:
    """The source string for notebook parameters: ``exchange`` + ``symbol`` win over ``source``.

    Examples
    --------
    >>> source_from_parts("sample", "kraken", "BTC/USD", "1h", "2024-01-01")
    'kraken:BTC/USD:1h:2024-01-01'
    >>> source_from_parts("sample:bars=100")
    'sample:bars=100'
    """
    if exchange or symbol:
        if not (exchange and symbol and timeframe):
            raise DataError("exchange, symbol and timeframe must be given together "
                            f"(got exchange={exchange!r}, symbol={symbol!r}, timeframe={timeframe!r})")
        parts = [exchange, symbol, timeframe, start or "", end or ""]
        return ":".join(parts).rstrip(":")
    if not source:
        raise DataError("no data source given: set `source` or `exchange` and `symbol`")
    return source


def _loopback_exchange(exchange_id: str):
    """A ccxt exchange aimed at ``$QUANTLIB_<EXCHANGE>_API_URL`` when set (tests), else None."""
    url = api_url_override(exchange_id)
    if url is None:
        return None

    return point_at_loopback(_resolve_exchange(exchange_id), url, api_url_variable(exchange_id))


def load(source: str = "sample", *, allow_partial: bool = False) -> pd.DataFrame:
    """Load the canonical OHLCV frame named by a data source string.

    An exchange source whose history starts later than its SINCE (Kraken's OHLC endpoint serves
    only its 720 most recent candles) raises DataError unless ``allow_partial=True``, which
    records the shorter history in ``attrs["partial_history"]``. When the trade cache of
    ``quantlib data fetch --from-trades`` covers the span, the candles are built from it.

    Examples
    --------
    >>> df = load("sample:seed=1,bars=300")
    >>> df.attrs["source"], len(df)
    ('synthetic', 300)
    """
    parsed = parse_source(source)
    if parsed.kind == "sample":
        opts = parsed.options
        market = synthetic_ohlcv(opts.get("bars", 5000), opts.get("timeframe", "1h"),
                                 opts.get("seed", 0))
        market.ohlcv.attrs["source_string"] = parsed.text
        return market.ohlcv
    if parsed.kind == "file":
        return load_ohlcv(parsed.path)

    return load_exchange(parsed.exchange, parsed.symbol, parsed.timeframe,
                         since=parsed.since, until=parsed.until,
                         exchange=_loopback_exchange(parsed.exchange),
                         allow_partial=allow_partial)


__all__ = ["DataSource", "parse_source", "source_from_parts", "load"]
