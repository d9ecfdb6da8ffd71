"""Exchange OHLCV through ccxt: paging, retries with bounded backoff, and an incremental cache.

:func:`fetch_ohlcv` downloads closed candles page by page with ccxt's rate limiter on, retries
transient network failures (``NetworkError``, ``RateLimitExceeded``, ``ExchangeNotAvailable``,
``RequestTimeout``) with exponential backoff, and keeps a Parquet cache per market (see
:mod:`quantlib.data.cache`) so a second call only asks for bars it does not have. Anything
unusable the exchange sends raises :class:`ExchangeError` before the cache is touched.
:func:`load_exchange` is what ``quantlib.data.load("kraken:BTC/USD:1h:...")`` calls.

Which candle is closed
    Each exchange says it its own way (:data:`CLOSED_CANDLE_RULES`). Kraken's OHLC endpoint
    always ends with the current, not-yet-committed candle, so its last entry is dropped from
    every response, whatever any clock says (``"last_entry"``). Elsewhere a candle is closed
    when its end is at or before "now" (``"clock"``), and "now" is the exchange's server time
    (ccxt ``fetch_time``) where the exchange offers it, else the local clock. The local clock
    only decides whether the cache is already complete (no request at all); the download itself
    is bounded by the server's time.

History is never truncated silently
    Some exchanges serve only recent candles (Kraken: its 720 most recent, whatever ``since``
    asks). When the first candle the exchange gives starts more than one bar after the requested
    ``since``, :func:`fetch_ohlcv` and :func:`load_exchange` raise :class:`DataError` naming the
    exchange, symbol, timeframe, the requested and the available start, and what to do
    (``allow_partial=True`` / ``--allow-partial``, or candles built from trades with
    ``--from-trades``, :mod:`quantlib.data.trades`). Accepted shorter history is recorded in
    ``attrs["partial_history"]``. The same check applies to a cache asked for an earlier start
    than it holds.
"""

from __future__ import annotations

import os
import time
from contextlib import nullcontext
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from quantlib.core.timeframes import timeframe_to_seconds
from quantlib.data.cache import COVERED_FROM, COVERED_TO, cache_path, read_cache, write_cache
from quantlib.data.ohlcv import validate_ohlcv
from quantlib.data.timeframes import date_text as _date_text
from quantlib.data.trade_cache import covered_ohlcv
from quantlib.errors import DataError, ExchangeError, ParameterError

# Largest page each exchange serves per OHLCV request (Kraken: 720); others get ccxt's common 1000.
_PAGE_LIMITS = {"kraken": 720}
# How an exchange marks the still-forming candle: "last_entry" = the last entry of every OHLC
# response is the forming candle (Kraken documents it); "clock" (every other exchange) = a candle
# is closed when it ended at or before the exchange's server time (local clock without one).
CLOSED_CANDLE_RULES = {"kraken": "last_entry"}
# Exchanges whose OHLC endpoint serves only recent history, and what they serve (for messages).
SHORT_OHLC_HISTORY = {"kraken": "Kraken's OHLC endpoint returns only its 720 most recent candles "
                                "(older ones cannot be retrieved, whatever `since` asks)"}
_BACKOFF_MAX = 30.0  # seconds: the bound of the exponential backoff
_PROGRESS_MIN_PAGES = 3  # show a progress bar only when a download needs more pages than this

TimeLike = str | int | datetime | pd.Timestamp


def _now_ms() -> int:
    """Wall clock in epoch ms; the one place "now" comes from (tests freeze it)."""
    return int(time.time() * 1000)


def _sleep(seconds: float) -> None:
    """Backoff sleep; a module-level seam so tests can record the delays."""
    time.sleep(seconds)


def _to_ms(value: TimeLike | None, what: str) -> int | None:
    """Epoch milliseconds of a date string, datetime, Timestamp or epoch-ms integer (UTC)."""
    if value is None:
        return None
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        return int(value)
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise ParameterError(f"{what}={value!r} is not a date (expected e.g. '2024-01-01', "
                             "a datetime or epoch milliseconds)") from None
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return int(stamp.value // 1_000_000)


def _iso(ms: int) -> str:
    return pd.Timestamp(ms, unit="ms", tz="UTC").isoformat()


def _resolve_exchange(exchange: Any) -> Any:
    import ccxt

    if isinstance(exchange, str):
        factory = getattr(ccxt, exchange, None)
        if factory is None or not isinstance(factory, type):
            raise ParameterError(f"exchange={exchange!r} is not a ccxt exchange id "
                                 "(e.g. 'kraken', 'binance', 'coinbase')")
        exchange = factory({"enableRateLimit": True})
    if not isinstance(exchange, ccxt.Exchange):
        raise ParameterError(f"exchange must be a ccxt exchange id or instance, got "
                             f"{type(exchange).__name__}")
    # ccxt hands back an unparsable body as a plain string; keeping the parsed JSON lets us tell
    # "no candles" from "garbage".
    exchange.enableLastJsonResponse = True
    return exchange


def call_with_retries(pager: Any, request: Any, *, where: str) -> Any:
    """One page request with the download's retry rules; ``pager`` counts the attempts.

    Network trouble, rate limits and timeouts are retried ``pager.max_retries`` times with
    exponential back-off; any other ccxt error is final and reported with ``where``.
    """
    import ccxt

    retryable = (ccxt.NetworkError, ccxt.RateLimitExceeded, ccxt.ExchangeNotAvailable,
                 ccxt.RequestTimeout)
    exchange = pager.exchange
    last_error: Exception | None = None
    for attempt in range(pager.max_retries + 1):
        # cleared so that check_json_body sees this attempt's body, not an earlier one's
        exchange.last_json_response = None
        exchange.last_http_response = None
        pager.n_requests += 1
        try:
            return request()
        except retryable as exc:
            last_error = exc
            if attempt < pager.max_retries:
                _sleep(min(pager.backoff_base * 2**attempt, _BACKOFF_MAX))
        except ccxt.BadSymbol as exc:
            raise ExchangeError(f"{exchange.id}: unknown symbol {pager.symbol!r} ({exc})") from None
        except ccxt.BaseError as exc:
            raise ExchangeError(f"{where}: the exchange refused the request: "
                                f"{type(exc).__name__}: {exc}") from None
    raise ExchangeError(f"{where}: gave up after {pager.max_retries + 1} attempts; last error: "
                        f"{type(last_error).__name__}: {last_error}")


def check_json_body(exchange: Any, where: str) -> None:
    """Refuse a response whose body was not JSON (ccxt would hand it back as a plain string)."""
    body = exchange.last_http_response
    if body and exchange.last_json_response is None:
        snippet = body[:80] + ("..." if len(body) > 80 else "")
        raise ExchangeError(f"{where}: malformed response, not valid JSON: {snippet!r}")


class _Pager:
    """Calls ``exchange.fetch_ohlcv`` page by page with retries; one instance per download."""

    def __init__(self, exchange: Any, symbol: str, timeframe: str, *, max_retries: int,
                 backoff_base: float, params: dict | None = None) -> None:
        self.exchange = exchange
        self.params = dict(params or {})  # e.g. {"price": "mark"}: mark-price candles
        self.symbol = symbol
        self.timeframe = timeframe
        self.tf_ms = timeframe_to_seconds(timeframe) * 1000
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.limit = _PAGE_LIMITS.get(exchange.id, 1000)
        self.drop_last = CLOSED_CANDLE_RULES.get(exchange.id, "clock") == "last_entry"
        self.n_requests = 0

    def _where(self, since_ms: int) -> str:
        return f"{self.exchange.id} {self.symbol} {self.timeframe} (page since {_iso(since_ms)})"

    def _call(self, since_ms: int) -> list:
        rows = call_with_retries(
            self, lambda: self.exchange.fetch_ohlcv(self.symbol, self.timeframe, since=since_ms,
                                                    limit=self.limit, params=dict(self.params)),
            where=self._where(since_ms))
        self._check_response(rows, since_ms)
        return rows[:-1] if self.drop_last else rows

    def _check_response(self, rows: Any, since_ms: int) -> None:
        check_json_body(self.exchange, self._where(since_ms))
        if not isinstance(rows, list):
            raise ExchangeError(f"{self._where(since_ms)}: malformed response: expected a list of "
                                f"candles, got {type(rows).__name__}")
        for i, row in enumerate(rows):
            if (not isinstance(row, list | tuple) or len(row) < 6
                    or any(not isinstance(v, int | float) or isinstance(v, bool) for v in row[:6])):
                raise ExchangeError(f"{self._where(since_ms)}: malformed candle #{i}: {row!r} "
                                    "(expected [time_ms, open, high, low, close, volume] numbers)")

    def fetch_range(self, start_ms: int, end_ms: int, progress: Any = None) -> list[list]:
        """All candles with open time in ``[start_ms, end_ms)``, in order.

        ``self.first_ms`` is then the open time of the first closed candle the exchange sent for
        ``start_ms`` (None when it sent none): where its history really begins.
        """
        out: list[list] = []
        cursor = start_ms
        self.first_ms = None
        while cursor < end_ms:
            page = [r for r in self._call(cursor) if r[0] >= cursor]
            if cursor == start_ms and page:
                self.first_ms = int(page[0][0])
            rows = [r for r in page if r[0] < end_ms]
            if not rows:
                break
            out.extend(rows)
            cursor = int(rows[-1][0]) + self.tf_ms
            if progress is not None:
                progress(len(rows))
        return out


def _server_now_ms(exchange: Any) -> int:
    """The exchange's clock (ccxt ``fetch_time``) where it has one, else the local clock.

    A failing time request falls back to the local clock: the candle rule of an exchange without
    a forming-candle marker then errs by at most the clock skew, and the download still runs.
    """
    import ccxt

    if not exchange.has.get("fetchTime"):
        return _now_ms()
    try:
        server_ms = exchange.fetch_time()
    except ccxt.BaseError:
        return _now_ms()
    return int(server_ms) if isinstance(server_ms, int | float) else _now_ms()


def _partial_message(exchange_id: str, symbol: str, timeframe: str, since_ms: int,
                     first_ms: int | None, where: str) -> str:
    available = _iso(first_ms) if first_ms is not None else "nothing in the requested span"
    why = SHORT_OHLC_HISTORY.get(exchange_id, "the exchange has no earlier candles")
    return (f"{exchange_id} {symbol} {timeframe}: history requested from {_iso(since_ms)} but "
            f"{where} starts at {available}: {why}. Refusing to return shorter history "
            "silently. Accept it with --allow-partial (allow_partial=True), or build the full "
            f"history from the exchange's public trades: quantlib data fetch --exchange "
            f"{exchange_id} --symbol {symbol} --timeframe {timeframe} --since "
            f"{_date_text(since_ms)} --from-trades")


def _rows_to_frame(rows: list[list]) -> pd.DataFrame:
    values = np.asarray([r[:6] for r in rows], dtype=np.float64).reshape(-1, 6)
    index = pd.to_datetime(values[:, 0].astype(np.int64), unit="ms", utc=True)
    frame = pd.DataFrame(values[:, 1:], index=index.rename("timestamp"),
                         columns=["open", "high", "low", "close", "volume"])
    return frame[~frame.index.duplicated(keep="last")].sort_index()


def _progress_bar(total_bars: int, enabled: bool, label: str):
    """A rich progress bar context and its ``advance(n)`` callback (or a no-op)."""
    if not enabled:
        return nullcontext(), None
    # rich (~0.04 s) only when a download shows progress: commands reading files never do
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    bar = Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                   TimeRemainingColumn(), transient=True)
    task = bar.add_task(label, total=total_bars)
    return bar, lambda n: bar.update(task, advance=n)


def _plan(cached: pd.DataFrame | None, since_ms: int, until_ms: int | None, now_ms: int,
          tf_ms: int) -> tuple[int, list[tuple[int, int]]]:
    """``(end_ms, ranges still to fetch)`` for ``[since, until)`` given the cache and now."""
    open_bar_ms = now_ms // tf_ms * tf_ms  # open time of the candle still forming: never stored
    end_ms = min(until_ms if until_ms is not None else open_bar_ms, open_bar_ms)
    if cached is None:
        return end_ms, [(since_ms, end_ms)] if end_ms > since_ms else []
    covered_from, covered_to = int(cached.attrs[COVERED_FROM]), int(cached.attrs[COVERED_TO])
    ranges = []
    if since_ms < covered_from:
        ranges.append((since_ms, covered_from))
    if end_ms > covered_to:
        ranges.append((covered_to, end_ms))
    return end_ms, ranges


def _sync(exchange: Any, symbol: str, timeframe: str, since_ms: int | None, until_ms: int | None,
          *, cache_dir: Any, progress: bool, max_retries: int, backoff_base: float,
          allow_partial: bool = False, params: dict | None = None,
          path: Any = None) -> pd.DataFrame:
    """Bring the cache up to date for ``[since, until)`` and return the whole cached frame.

    Raises DataError (nothing written) when the exchange's history starts later than ``since``
    and ``allow_partial`` is False; with ``allow_partial`` the frame's attrs say so. ``params``
    go to every ``fetch_ohlcv`` call and ``path`` replaces the cache file (mark-price candles,
    :mod:`quantlib.data.perp_fetch`).
    """
    tf_ms = timeframe_to_seconds(timeframe) * 1000
    exchange_id = exchange if isinstance(exchange, str) else exchange.id
    path = path if path is not None else cache_path(cache_dir, exchange_id, symbol, timeframe)
    cached = read_cache(path)
    requested = since_ms is not None
    if since_ms is None:
        since_ms = (int(cached.attrs[COVERED_FROM]) if cached is not None
                    else _now_ms() // tf_ms * tf_ms - _PAGE_LIMITS.get(exchange_id, 1000) * tf_ms)
    since_ms = -(-since_ms // tf_ms) * tf_ms  # first bar opening at or after `since`
    # The local clock only decides whether anything is missing; the exchange's clock bounds it.
    end_ms, ranges = _plan(cached, since_ms, until_ms, _now_ms(), tf_ms)
    if not ranges:
        return cached if cached is not None else _rows_to_frame([])

    exchange = _resolve_exchange(exchange)
    now_ms = _server_now_ms(exchange)
    end_ms, ranges = _plan(cached, since_ms, until_ms, now_ms, tf_ms)
    if not ranges:
        return cached if cached is not None else _rows_to_frame([])
    pager = _Pager(exchange, symbol, timeframe, max_retries=max_retries, backoff_base=backoff_base,
                   params=params)
    total = sum(b - a for a, b in ranges) // tf_ms
    bar, advance = _progress_bar(total, progress and total > _PROGRESS_MIN_PAGES * pager.limit,
                                 f"{exchange_id} {symbol} {timeframe}")
    rows: list[list] = []
    partial = None
    with bar:
        for a, b in ranges:
            rows.extend(pager.fetch_range(a, b, advance))
            head = requested and a == since_ms and pager.first_ms is None
            # A range starting late is a lost head, or (after the cache's end) a hole in the
            # middle: an exchange serving only recent candles moved on while the cache waited.
            late = pager.first_ms is not None and pager.first_ms - a > tf_ms
            if (head or late) and (requested or a != since_ms):
                if not allow_partial:  # refuse before anything is cached
                    raise DataError(_partial_message(exchange_id, symbol, timeframe, a,
                                                     pager.first_ms, "the exchange's history"))
                first = _iso(pager.first_ms) if pager.first_ms is not None else "nothing"
                partial = f"requested from {_iso(a)}, the exchange served from {first}"
    fresh = _rows_to_frame(rows)
    try:
        validate_ohlcv(fresh, timeframe, name=f"{exchange_id} {symbol} {timeframe}")
    except DataError as exc:
        raise ExchangeError(f"{exchange_id} {symbol} {timeframe}: the exchange sent invalid "
                            f"candles: {exc}") from None
    return _store(cached, fresh, path, exchange_id, symbol, timeframe, since_ms, end_ms,
                  now_ms // tf_ms * tf_ms, tf_ms, partial)


def _store(cached: pd.DataFrame | None, fresh: pd.DataFrame, path: Any, exchange_id: str,
           symbol: str, timeframe: str, since_ms: int, end_ms: int, open_bar_ms: int,
           tf_ms: int, partial: str | None) -> pd.DataFrame:
    """Merge ``fresh`` into the cache, write it (atomically) and return the merged frame.

    ``partial`` (shorter history the user accepted) is kept in the file's attrs, so ``quantlib
    data info`` shows it."""
    covered_from = since_ms if cached is None else int(cached.attrs[COVERED_FROM])
    covered_to = since_ms if cached is None else int(cached.attrs[COVERED_TO])
    merged = fresh if cached is None else pd.concat([cached, fresh])
    merged = merged[~merged.index.duplicated(keep="first")].sort_index()
    new_to = max(covered_to, end_ms)
    if end_ms == open_bar_ms and len(merged):
        # A just-closed bar may not be published yet: next time ask again after the last bar seen.
        new_to = max(covered_to, min(end_ms, int(merged.index[-1].value // 1_000_000) + tf_ms))
    merged.attrs = {"source": "ccxt", "exchange": exchange_id, "symbol": symbol,
                    "timeframe": timeframe, COVERED_FROM: min(covered_from, since_ms),
                    COVERED_TO: new_to}
    partial = partial or (cached.attrs.get("partial_history") if cached is not None else None)
    if partial:
        merged.attrs["partial_history"] = partial
    if len(fresh) or cached is None or merged.attrs != cached.attrs:
        write_cache(merged, path)
    return merged


def _finish(frame: pd.DataFrame, exchange_id: str, symbol: str, timeframe: str,
            since_ms: int | None, until_ms: int | None, allow_partial: bool = False,
            where: str = "the cache") -> pd.DataFrame:
    stamps = frame.index.as_unit("ms").asi8
    keep = np.ones(len(frame), dtype=bool)
    if since_ms is not None:
        keep &= stamps >= since_ms
    if until_ms is not None:
        keep &= stamps < until_ms
    out = frame.loc[keep].copy()
    partial = _partial_note(out, timeframe, since_ms)
    if partial is not None and not allow_partial:
        first_ms = int(out.index[0].value // 1_000_000) if len(out) else None
        raise DataError(_partial_message(exchange_id, symbol, timeframe,
                                         _first_open(since_ms, timeframe), first_ms, where))
    parts = [exchange_id, symbol, timeframe]
    if since_ms is not None:
        parts.append(_date_text(since_ms))
        if until_ms is not None:
            parts.append(_date_text(until_ms))
    out.attrs = {"source": "ccxt", "exchange": exchange_id, "symbol": symbol,
                 "timeframe": timeframe, "source_string": ":".join(parts)}
    # A shorter history accepted earlier (a lost head, a hole) stays flagged wherever it is served.
    partial = partial or frame.attrs.get("partial_history")
    if partial is not None:
        out.attrs["partial_history"] = partial
    return out


def _first_open(since_ms: int | None, timeframe: str) -> int:
    tf_ms = timeframe_to_seconds(timeframe) * 1000
    return -(-int(since_ms or 0) // tf_ms) * tf_ms


def _partial_note(frame: pd.DataFrame, timeframe: str, since_ms: int | None) -> str | None:
    """``"requested from X, data from Y"`` when the frame starts more than one bar after
    ``since`` (or holds nothing), else None."""
    if since_ms is None:
        return None
    tf_ms = timeframe_to_seconds(timeframe) * 1000
    wanted = _first_open(since_ms, timeframe)
    if len(frame) and int(frame.index[0].value // 1_000_000) - wanted <= tf_ms:
        return None
    got = str(frame.index[0]) if len(frame) else "no data"
    return f"requested from {pd.Timestamp(wanted, unit='ms', tz='UTC')}, data from {got}"


def fetch_ohlcv(exchange: Any, symbol: str, timeframe: str, since: TimeLike,
                until: TimeLike | None = None, *, cache_dir: str | os.PathLike | None = None,
                progress: bool = True, max_retries: int = 5, backoff_base: float = 0.5,
                allow_partial: bool = False) -> pd.DataFrame:
    """Closed OHLCV candles of ``symbol`` from ``since`` to ``until`` through ccxt, cached.

    Parameters
    ----------
    exchange : a ccxt exchange id (``"kraken"``, created with ``enableRateLimit=True``) or a
        ccxt ``Exchange`` instance (its own rate limiter settings are used).
    symbol : unified ccxt symbol, ``"BTC/USD"``.
    timeframe : ccxt timeframe, ``"1h"``.
    since, until : first bar open time (inclusive) and end (exclusive, default now); date
        strings, datetimes, Timestamps (naive = UTC) or epoch milliseconds.
    cache_dir : cache root (default ``$QUANTLIB_DATA_DIR`` or ``./data``); the file is
        ``<cache_dir>/<exchange>/<BASE>-<QUOTE>_<timeframe>.parquet``.
    progress : show a progress bar on long downloads.
    max_retries : retries of a failing page (transient errors only) before giving up.
    backoff_base : first backoff in seconds, doubled each retry, bounded at 30 s.
    allow_partial : accept history that starts later than ``since`` (recorded in
        ``attrs["partial_history"]``); by default that is refused with a DataError.

    Returns
    -------
    The canonical, validated frame with attrs ``source="ccxt"``, ``exchange``, ``symbol``,
    ``timeframe`` and ``source_string`` (``"kraken:BTC/USD:1h:2024-01-01"``).

    Raises
    ------
    DataError : the exchange's (or the cache's) history starts more than one bar after
        ``since`` and ``allow_partial`` is False; nothing is cached then.
    ExchangeError : retries exhausted, the exchange refused the request, or it answered
        something malformed (the cache is then left untouched).

    Examples
    --------
    >>> df = fetch_ohlcv("kraken", "BTC/USD", "1h", since="2024-01-01")  # doctest: +SKIP
    >>> df.attrs["source_string"]                                       # doctest: +SKIP
    'kraken:BTC/USD:1h:2024-01-01'
    """
    if max_retries < 0 or backoff_base < 0:
        raise ParameterError(f"max_retries ({max_retries}) and backoff_base ({backoff_base}) "
                             "must be >= 0")
    timeframe_to_seconds(timeframe)
    since_ms, until_ms = _to_ms(since, "since"), _to_ms(until, "until")
    if since_ms is None:
        raise ParameterError("since is required, e.g. since='2024-01-01'")
    if until_ms is not None and until_ms <= since_ms:
        raise ParameterError(f"until ({_iso(until_ms)}) must be after since ({_iso(since_ms)})")
    exchange = _resolve_exchange(exchange)
    frame = _sync(exchange, symbol, timeframe, since_ms, until_ms, cache_dir=cache_dir,
                  progress=progress, max_retries=max_retries, backoff_base=backoff_base,
                  allow_partial=allow_partial)
    return _finish(frame, exchange.id, symbol, timeframe, since_ms, until_ms, allow_partial)


def load_exchange(exchange_id: str, symbol: str, timeframe: str, since: TimeLike | None = None,
                  until: TimeLike | None = None, cache_dir: str | os.PathLike | None = None, *,
                  exchange: Any = None, progress: bool = False,
                  allow_partial: bool = False) -> pd.DataFrame:
    """Exchange data for a source string: served from the cache, fetched only when missing.

    When the trade cache (:mod:`quantlib.data.trades`, ``quantlib data fetch --from-trades``)
    covers ``[since, until)`` the candles are built from those trades. Otherwise, when the
    OHLCV cache already covers the span no request is made (no exchange object is even
    created). Without ``since`` the cached span is used, or the exchange's latest page when
    nothing is cached. ``exchange`` injects a ready ccxt instance (tests point one at a loopback
    server). History starting later than ``since`` is refused unless ``allow_partial``.

    Examples
    --------
    >>> from quantlib.data import load
    >>> df = load("kraken:BTC/USD:1h:2024-01-01:2024-02-01")  # doctest: +SKIP
    """
    timeframe_to_seconds(timeframe)
    since_ms, until_ms = _to_ms(since, "since"), _to_ms(until, "until")
    if since_ms is not None and until_ms is not None and until_ms <= since_ms:
        raise DataError(f"{exchange_id}:{symbol}:{timeframe}: until ({_iso(until_ms)}) must be "
                        f"after since ({_iso(since_ms)})")

    if since_ms is not None:
        built = covered_ohlcv(exchange_id, symbol, timeframe, since_ms, until_ms, cache_dir)
        if built is not None:
            return built
    source = exchange if exchange is not None else exchange_id
    if exchange is not None:
        exchange = _resolve_exchange(exchange)
        if exchange.id != exchange_id:
            raise ParameterError(f"exchange instance is {exchange.id!r}, expected {exchange_id!r}")
    frame = _sync(source, symbol, timeframe, since_ms, until_ms, cache_dir=cache_dir,
                  progress=progress, max_retries=5, backoff_base=0.5, allow_partial=allow_partial)
    return _finish(frame, exchange_id, symbol, timeframe, since_ms, until_ms, allow_partial)


__all__ = ["CLOSED_CANDLE_RULES", "SHORT_OHLC_HISTORY", "fetch_ohlcv", "load_exchange"]
