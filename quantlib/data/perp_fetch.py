"""Perpetual-swap companions through ccxt: funding-rate history and mark-price candles, cached.

What :func:`load_perp_exchange` does for ``binanceusdm:BTC/USDT:USDT:1h:SINCE[:UNTIL]``:

1. the last-price candles come from :func:`quantlib.data.fetch.load_exchange` (cache
   ``<exchange>/BTC-USDT_USDT_1h.parquet``), unchanged;
2. the mark-price candles run through the same incremental machinery with ccxt's
   ``fetch_ohlcv(..., params={"price": "mark"})`` (Binance ``/fapi/v1/markPriceKlines``) into
   ``BTC-USDT_USDT_1h.mark.parquet``: the same forming-candle rule (a candle is closed when its
   end is at or before the exchange's server time), paging, retries and partial-history refusal;
3. the funding payments come from ``fetch_funding_rate_history`` (``/fapi/v1/fundingRate``)
   into ``BTC-USDT_USDT_funding.parquet``, paged forward 1000 records at a time (Binance's maximum;
   ``startTime`` and ``endTime`` are both inclusive, so the next page starts 1 ms after the last
   record). A payment is known once its time has passed, so the span asked is bounded by the
   server's clock, and a span ending "now" is marked covered only up to the last record seen
   (a payment being settled is asked again next time).

Both companions cover the span of the candles: from the first bar's open to the last bar's end
(half-open), so a payment at the end of the last bar is left for the next load. Binance stamps
payments a few milliseconds after the hour; times are floored to the whole second. Records that
are missing stay missing (``validate_funding`` reports them as gaps). A funding history that
starts more than one 8 h interval after SINCE is refused like short OHLCV history, unless
``allow_partial``.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from quantlib.core.timeframes import timeframe_to_seconds
from quantlib.data import fetch as _fetch
from quantlib.data.cache import (
    COVERED_FROM,
    COVERED_TO,
    cache_path,
    read_cached_frame,
    write_cache,
)
from quantlib.data.perp_data import (
    PerpData,
    _check_perp_source,
    infer_funding_interval,
    validate_funding,
)
from quantlib.data.sources import _loopback_exchange, parse_source
from quantlib.data.timeframes import date_text
from quantlib.errors import DataError, ExchangeError

FUNDING_PAGE_LIMIT = 1000  # Binance /fapi/v1/fundingRate: at most 1000 records per request
_LONGEST_INTERVAL_MS = 8 * 3600 * 1000  # Binance pays every 8 h at most (1 h or 4 h on some)


def funding_cache_path(cache_dir: Any, exchange_id: str, symbol: str):
    """``<cache_dir>/<exchange>/<BASE>-<QUOTE>_<SETTLE>_funding.parquet``.

    Examples
    --------
    >>> funding_cache_path("data", "binanceusdm", "BTC/USDT:USDT").as_posix()
    'data/binanceusdm/BTC-USDT_USDT_funding.parquet'
    """
    return cache_path(cache_dir, exchange_id, symbol, "funding")


def mark_cache_path(cache_dir: Any, exchange_id: str, symbol: str, timeframe: str):
    """``<cache_dir>/<exchange>/<BASE>-<QUOTE>_<SETTLE>_<timeframe>.mark.parquet``.

    Examples
    --------
    >>> mark_cache_path("data", "binanceusdm", "BTC/USDT:USDT", "1h").as_posix()
    'data/binanceusdm/BTC-USDT_USDT_1h.mark.parquet'
    """
    return cache_path(cache_dir, exchange_id, symbol, timeframe).with_suffix(".mark.parquet")


def read_funding_cache(path) -> pd.DataFrame | None:
    """The cached funding frame, or None without a file; DataError naming a damaged file.

    Examples
    --------
    >>> from pathlib import Path
    >>> read_funding_cache(Path("no/such/BTC-USDT_USDT_funding.parquet")) is None
    True
    """
    return read_cached_frame(path, "funding cache file",
                             lambda frame: validate_funding(frame, name=str(path)))


class _FundingPager:
    """``fetch_funding_rate_history`` page by page with fetch.py's retry rules."""

    def __init__(self, exchange: Any, symbol: str, *, max_retries: int, backoff_base: float):
        self.exchange, self.symbol = exchange, symbol
        self.max_retries, self.backoff_base = max_retries, backoff_base
        self.n_requests = 0

    def _where(self, since_ms: int) -> str:
        return f"{self.exchange.id} {self.symbol} funding (page since {_fetch._iso(since_ms)})"

    def _call(self, since_ms: int, end_ms: int) -> list[tuple[int, float]]:
        records = _fetch.call_with_retries(
            self, lambda: self.exchange.fetch_funding_rate_history(
                self.symbol, since=since_ms, limit=FUNDING_PAGE_LIMIT,
                params={"endTime": end_ms - 1}),  # Binance's endTime is inclusive
            where=self._where(since_ms))
        return self._parse(records, since_ms)

    def _parse(self, records: Any, since_ms: int) -> list[tuple[int, float]]:
        _fetch.check_json_body(self.exchange, self._where(since_ms))
        if not isinstance(records, list):
            raise ExchangeError(f"{self._where(since_ms)}: malformed response: expected a list "
                                f"of funding records, got {type(records).__name__}")
        out = []
        for i, record in enumerate(records):
            stamp = record.get("timestamp") if isinstance(record, dict) else None
            rate = record.get("fundingRate") if isinstance(record, dict) else None
            if (not isinstance(stamp, int) or not isinstance(rate, int | float)
                    or isinstance(rate, bool) or not math.isfinite(rate)):
                info = record.get("info", record) if isinstance(record, dict) else record
                raise ExchangeError(f"{self._where(since_ms)}: malformed funding record #{i}: "
                                    f"{info!r} (expected a fundingTime in ms and a numeric "
                                    "fundingRate)")
            out.append((stamp, float(rate)))
        return out

    def fetch_range(self, start_ms: int, end_ms: int) -> list[tuple[int, float]]:
        """Records with time in ``[start_ms, end_ms)``, in order; ``self.first_ms`` is the
        first one's time (None when there is none)."""
        out: list[tuple[int, float]] = []
        cursor, self.first_ms = start_ms, None
        while cursor < end_ms:
            page = self._call(cursor, end_ms)
            rows = [r for r in page if cursor <= r[0] < end_ms]
            if not rows:
                break
            if self.first_ms is None:
                self.first_ms = rows[0][0]
            out.extend(rows)
            cursor = rows[-1][0] + 1
            if len(page) < FUNDING_PAGE_LIMIT:
                break  # a short page is the last one
        return out


def _records_to_frame(records: list[tuple[int, float]]) -> pd.DataFrame:
    stamps = np.asarray([r[0] for r in records], dtype=np.int64) // 1000  # whole seconds
    index = pd.to_datetime(stamps, unit="s", utc=True).rename("timestamp")
    frame = pd.DataFrame({"funding_rate": np.asarray([r[1] for r in records], dtype=np.float64)},
                         index=index)
    return frame[~frame.index.duplicated(keep="last")].sort_index()


def _missing(cached: pd.DataFrame | None, since_ms: int, end_ms: int) -> list[tuple[int, int]]:
    if cached is None:
        return [(since_ms, end_ms)] if end_ms > since_ms else []
    covered_from, covered_to = int(cached.attrs[COVERED_FROM]), int(cached.attrs[COVERED_TO])
    ranges = [(since_ms, covered_from)] if since_ms < covered_from else []
    return ranges + ([(covered_to, end_ms)] if end_ms > covered_to else [])


def sync_funding(exchange: Any, symbol: str, since_ms: int, until_ms: int, *, cache_dir: Any = None,
                 max_retries: int = 5, backoff_base: float = 0.5,
                 allow_partial: bool = False) -> pd.DataFrame:
    """Bring the funding cache up to date for ``[since_ms, until_ms)``; the whole cached frame.

    Raises DataError (nothing written) when the history starts more than 8 h after
    ``since_ms`` and ``allow_partial`` is False; ExchangeError when the exchange fails or sends
    something unusable (the cache is left untouched).

    Examples
    --------
    >>> frame = sync_funding("binanceusdm", "BTC/USDT:USDT", 1704067200000,
    ...                      1706745600000)                       # doctest: +SKIP
    >>> frame.attrs["funding_interval"], frame.attrs["covered_to_ms"]  # doctest: +SKIP
    ('8h', 1706745600000)
    """
    exchange_id = exchange if isinstance(exchange, str) else exchange.id
    path = funding_cache_path(cache_dir, exchange_id, symbol)
    cached = read_funding_cache(path)
    if not _missing(cached, since_ms, min(until_ms, _fetch._now_ms() + 1)):
        return cached
    exchange = _fetch._resolve_exchange(exchange)
    now_ms = _fetch._server_now_ms(exchange)
    end_ms = min(until_ms, now_ms + 1)  # a payment exists once its time has come
    ranges = _missing(cached, since_ms, end_ms)
    if not ranges:
        return cached
    pager = _FundingPager(exchange, symbol, max_retries=max_retries, backoff_base=backoff_base)
    records: list[tuple[int, float]] = []
    partial = cached.attrs.get("partial_history") if cached is not None else None
    for a, b in ranges:
        records.extend(pager.fetch_range(a, b))
        head_lost = (a == since_ms and b - a > _LONGEST_INTERVAL_MS
                     and (pager.first_ms is None or pager.first_ms - a > _LONGEST_INTERVAL_MS))
        if head_lost:
            first = _fetch._iso(pager.first_ms) if pager.first_ms is not None else "nothing"
            if not allow_partial:
                raise DataError(f"{exchange_id} {symbol} funding: history requested from "
                                f"{_fetch._iso(a)} but the exchange's starts at {first}. "
                                "Refusing to return shorter history silently; accept it with "
                                "allow_partial=True (--allow-partial)")
            partial = f"funding requested from {_fetch._iso(a)}, the exchange served from {first}"
    fresh = _records_to_frame(records)
    name = f"{exchange_id} {symbol} funding"
    try:
        validate_funding(fresh, name=name)
    except DataError as exc:
        raise ExchangeError(f"{name}: the exchange sent invalid funding: {exc}") from None
    merged = fresh if cached is None else pd.concat([cached, fresh])
    merged = merged[~merged.index.duplicated(keep="first")].sort_index()
    covered_from = min(since_ms, int(cached.attrs[COVERED_FROM])) if cached is not None else since_ms
    covered_to = int(cached.attrs[COVERED_TO]) if cached is not None else since_ms
    if end_ms == until_ms:
        covered_to = max(covered_to, end_ms)
    elif records:  # bounded by now: covered up to the last payment seen, ask the rest again
        covered_to = max(covered_to, max(r[0] for r in records) + 1)
    merged.attrs = {"source": "ccxt", "exchange": exchange_id, "symbol": symbol,
                    "funding_interval": infer_funding_interval(merged.index) or "8h",
                    COVERED_FROM: covered_from, COVERED_TO: covered_to}
    if partial:
        merged.attrs["partial_history"] = partial
    if cached is None or len(fresh) or merged.attrs != cached.attrs:
        write_cache(merged, path)
    return merged


def _source_text(exchange_id: str, symbol: str, timeframe: str, since_ms: int | None,
                 until_ms: int | None) -> str:
    parts = [exchange_id, symbol, timeframe]
    if since_ms is not None:
        parts.append(date_text(since_ms))
        if until_ms is not None:
            parts.append(date_text(until_ms))
    return ":".join(parts)


def fetch_perp(exchange: Any, symbol: str, timeframe: str, since: Any, until: Any = None, *,
               cache_dir: Any = None, allow_partial: bool = False):
    """Candles, mark candles and funding of a swap through ccxt into the caches: a PerpData.

    ``exchange`` is a ccxt id in :data:`~quantlib.data.perp.PERP_EXCHANGES` or an instance of
    one (tests aim one at a loopback server); ``since``/``until`` as for
    :func:`quantlib.data.fetch.fetch_ohlcv`.

    Examples
    --------
    >>> perp = fetch_perp("binanceusdm", "BTC/USDT:USDT", "1h", "2024-01-01")  # doctest: +SKIP
    >>> perp.funding.attrs["funding_interval"]                                # doctest: +SKIP
    '8h'
    """
    exchange_id = exchange if isinstance(exchange, str) else getattr(exchange, "id", None)
    since_ms, until_ms = _fetch._to_ms(since, "since"), _fetch._to_ms(until, "until")
    if since_ms is None or (until_ms is not None and until_ms <= since_ms):
        raise DataError(f"{exchange_id} {symbol} {timeframe}: since is required and until must "
                        f"be after it (got since={since!r}, until={until!r})")
    # The same checks as a source string (venue, symbol, timeframe); dates kept as given.
    parsed = _check_perp_source(parse_source(f"{exchange_id}:{symbol}:{timeframe}"))
    stamp = lambda ms: pd.Timestamp(ms, unit="ms", tz="UTC") if ms is not None else None  # noqa: E731
    parsed = replace(parsed, text=_source_text(exchange_id, symbol, timeframe, since_ms, until_ms),
                     since=stamp(since_ms), until=stamp(until_ms))
    return load_perp_exchange(parsed, allow_partial=allow_partial, cache_dir=cache_dir,
                              exchange=None if isinstance(exchange, str) else exchange)


def load_perp_exchange(parsed: Any, *, allow_partial: bool = False, cache_dir: Any = None,
                       exchange: Any = None):
    """:class:`~quantlib.data.perp.PerpData` of a parsed exchange source (see the module doc);
    ``exchange`` injects a ccxt instance, else ``$QUANTLIB_<EXCHANGE>_API_URL`` or the id."""
    exchange_id, symbol, timeframe = parsed.exchange, parsed.symbol, parsed.timeframe
    since_ms = _fetch._to_ms(parsed.since, "since")
    until_ms = _fetch._to_ms(parsed.until, "until")
    instance = exchange if exchange is not None else _loopback_exchange(exchange_id)
    ohlcv = _fetch.load_exchange(exchange_id, symbol, timeframe, since_ms, until_ms, cache_dir,
                                 exchange=instance, allow_partial=allow_partial)
    if not len(ohlcv):
        raise DataError(f"data source {parsed.text!r}: no closed candles in the span, so no "
                        "mark or funding to align with them")
    tf_ms = timeframe_to_seconds(timeframe) * 1000
    first_ms = int(ohlcv.index[0].value // 1_000_000)
    span_from = since_ms if since_ms is not None else first_ms
    span_to = int(ohlcv.index[-1].value // 1_000_000) + tf_ms  # the end of the last candle
    source = instance if instance is not None else exchange_id
    mark_path = mark_cache_path(cache_dir, exchange_id, symbol, timeframe)
    mark_all = _fetch._sync(source, symbol, timeframe, span_from, span_to, cache_dir=cache_dir,
                            progress=False, max_retries=5, backoff_base=0.5,
                            allow_partial=allow_partial, params={"price": "mark"},
                            path=mark_path)
    mark = _fetch._finish(mark_all, exchange_id, symbol, timeframe, span_from, span_to,
                          allow_partial, where=f"the mark cache {mark_path}")
    funding_all = sync_funding(source, symbol, span_from, span_to, cache_dir=cache_dir,
                               allow_partial=allow_partial)
    stamps = funding_all.index.as_unit("ms").asi8
    funding = funding_all.loc[(stamps >= span_from) & (stamps < span_to)].copy()
    text = parsed.text
    ohlcv.attrs["source_string"] = text
    mark.attrs.update(source_string=text, price="mark")
    funding.attrs = {key: value for key, value in funding_all.attrs.items()
                     if key not in (COVERED_FROM, COVERED_TO)}
    funding.attrs["source_string"] = text
    return PerpData(ohlcv, mark, funding, text)


__all__ = ["FUNDING_PAGE_LIMIT", "fetch_perp", "funding_cache_path", "load_perp_exchange", "mark_cache_path",
           "read_funding_cache", "sync_funding"]
