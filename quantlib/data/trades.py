"""Candles built from an exchange's public trades, for markets whose OHLC history is short.

Kraken's OHLC endpoint serves only its 720 most recent candles, but its public trades endpoint
pages through the whole history. :func:`download_trades` pages ``fetch_trades`` through ccxt
(Kraken: by the ``last`` cursor of each response, passed back as ``since``; other exchanges: by
the time of the last trade), within ccxt's rate limit, and stores the trades in a Parquet cache
partitioned by UTC day; :func:`trades_to_ohlcv` builds UTC-aligned candles of any timeframe.

The trade cache protocol (why a kill at any instant loses and duplicates nothing)
    ``<cache_dir>/<exchange>/trades/<BASE>-<QUOTE>/<YYYY-MM-DD>.parquet`` hold the trades of one
    UTC day (columns ``id, timestamp`` (epoch ms), ``price, amount, side`` (+1 buy, -1 sell)),
    sorted by time then id, unique by the exchange's trade id. ``state.json`` holds the span
    fetched completely (``since_ms`` .. ``covered_to_ms``) and the cursor to resume from. After
    each page: first the page is merged into its day files (read, union, de-duplicated by id,
    written to a temporary file and renamed over the old one), then ``state.json`` is replaced
    the same way. A kill before the state is written only means the page is asked for again on
    the rerun, and merging it again changes nothing (same ids); the state never claims a trade
    that is not on disk.

Candles
    A bar holds the trades with ``open_time <= t < open_time + timeframe``: open = first trade,
    close = last (by time, then trade id), high/low = extremes, volume = summed amounts. Only
    bars that ended within the fetched span are built. An interval without a trade has no bar:
    it is a gap (reported by :func:`quantlib.data.validate_ohlcv`), never invented.

Examples
--------
>>> import pandas as pd
>>> trades = pd.DataFrame({"timestamp": [0, 1_000, 3_600_000], "id": [1, 2, 3],
...                        "price": [10.0, 12.0, 11.0], "amount": [1.0, 2.0, 0.5]})
>>> trades_to_ohlcv(trades, "1h", 0, 7_200_000)[["open", "high", "close", "volume"]].values.tolist()
[[10.0, 12.0, 12.0, 3.0], [11.0, 11.0, 11.0, 0.5]]
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd

from quantlib.data import fetch
from quantlib.data.fetch import _progress_bar, _resolve_exchange, _server_now_ms, _to_ms
from quantlib.data.trade_cache import (
    TRADE_COLUMNS,
    TradeState,
    _merge_days,
    _write_state,
    covered_ohlcv,
    read_state,
    read_trades,
    trades_dir,
    trades_to_ohlcv,
)
from quantlib.errors import ExchangeError, ParameterError

# Exchanges whose trades endpoint pages by an opaque cursor returned as `last` (Kraken's ns time).
_CURSOR_PAGING = {"kraken"}


# --------------------------------------------------------------------------- download
def _page_frame(exchange: Any, trades: list[dict]) -> pd.DataFrame:
    """ccxt trades -> trade-cache columns (ids must be integers: they order and de-duplicate)."""
    try:
        ids = np.asarray([int(t["id"]) for t in trades], dtype=np.int64)
    except (TypeError, ValueError):
        raise ExchangeError(f"{exchange.id}: trades without integer ids (got "
                            f"{trades[0].get('id')!r}); --from-trades needs the exchange's "
                            "trade ids to de-duplicate") from None
    if exchange.id == "kraken":
        # Kraken sends seconds with 4 decimals; ccxt truncates seconds*1000, which can land one
        # ms early (x.1230 -> 122.99..): round to the microsecond first.
        stamps = [int(round(float(t["info"][2]) * 1e6)) // 1000 for t in trades]
    else:
        stamps = [int(t["timestamp"]) for t in trades]
    return pd.DataFrame({
        "id": ids, "timestamp": np.asarray(stamps, dtype=np.int64),
        "price": np.asarray([float(t["price"]) for t in trades], dtype=np.float64),
        "amount": np.asarray([float(t["amount"]) for t in trades], dtype=np.float64),
        "side": np.asarray([1 if t["side"] == "buy" else -1 for t in trades], dtype=np.int8),
    })


def _call(exchange: Any, symbol: str, cursor: str, *, max_retries: int,
          backoff_base: float) -> tuple[list[dict], str | None]:
    """One page of trades after ``cursor`` and the next cursor, with the download's retries."""
    def request() -> tuple[list[dict], str | None]:
        if exchange.id in _CURSOR_PAGING:
            trades = exchange.fetch_trades(symbol, params={"since": cursor})
            body = exchange.last_json_response or {}
            return trades, str((body.get("result") or {}).get("last") or cursor)
        return exchange.fetch_trades(symbol, since=int(cursor), limit=1000), None

    # call_with_retries reads the retry settings from a pager and counts its requests there
    pager = SimpleNamespace(exchange=exchange, symbol=symbol, max_retries=max_retries,
                            backoff_base=backoff_base, n_requests=0)
    return fetch.call_with_retries(pager, request,
                                   where=f"{exchange.id} {symbol} trades (cursor {cursor})")


def request_seconds(exchange: Any) -> float:
    """Seconds between two trade requests at the exchange's rate limit (ccxt's cost model)."""
    cost = 1.0
    try:
        cost = float(exchange.api["public"]["get"]["Trades"]["cost"])
    except (KeyError, TypeError, ValueError):
        pass
    return exchange.rateLimit / 1000.0 * cost


def _estimate(exchange: Any, symbol: str, page: pd.DataFrame, span_ms: int) -> str:
    """"about N requests, ~T at the rate limit", extrapolated from the first page's density."""
    per_page_ms = max(int(page["timestamp"].iloc[-1] - page["timestamp"].iloc[0]), 1)
    pages = max(1, int(np.ceil(span_ms / per_page_ms)))
    seconds = pages * request_seconds(exchange)
    hours = seconds / 3600
    took = f"{hours:.1f} hours" if hours >= 1 else f"{seconds / 60:.1f} minutes"
    return (f"{exchange.id} {symbol}: about {pages:,} trade requests for this span ({len(page)} "
            f"trades per page cover {per_page_ms / 3.6e6:.2f} h here); at the exchange's rate "
            f"limit ({request_seconds(exchange):.2f} s per request) that takes about {took}. "
            "Interrupt any time: a rerun resumes where it stopped.")


def download_trades(exchange: Any, symbol: str, since: Any, until: Any = None, *,
                    cache_dir: str | os.PathLike | None = None, progress: bool = True,
                    max_retries: int = 5, backoff_base: float = 0.5,
                    echo: Callable[[str], None] | None = None) -> TradeState:
    """Download the public trades of ``symbol`` from ``since`` to ``until`` into the trade cache.

    Resumes where a previous (possibly killed) download stopped; see the module docstring for
    the crash-safety protocol. The cache stays one contiguous span: a ``since`` inside or after
    it continues from where it ends, an earlier ``since`` starts over from there (trades
    already stored are merged, never duplicated). ``echo`` receives the estimate of how long
    the download takes at the exchange's rate limit, said after the first page (whose trades
    per hour it extrapolates).

    Returns
    -------
    The cache's :class:`TradeState` (``since_ms``, ``covered_to_ms``, ``done``, ...).

    Raises
    ------
    ExchangeError : retries exhausted, the exchange refused, or it has no trades endpoint.

    Examples
    --------
    >>> state = download_trades("kraken", "BTC/USD", "2024-01-01")  # doctest: +SKIP
    >>> covered_ohlcv("kraken", "BTC/USD", "1h", state.since_ms, None, None)  # doctest: +SKIP
    """
    since_ms, until_ms = _to_ms(since, "since"), _to_ms(until, "until")
    if since_ms is None:
        raise ParameterError("since is required, e.g. since='2024-01-01'")
    exchange = _resolve_exchange(exchange)
    if not exchange.has.get("fetchTrades"):
        raise ExchangeError(f"{exchange.id} has no public trades endpoint in ccxt: "
                            "--from-trades cannot be used")
    folder = trades_dir(cache_dir, exchange.id, symbol)
    folder.mkdir(parents=True, exist_ok=True)
    server_now_ms = _server_now_ms(exchange)  # the exchange's clock bounds what exists
    end_ms = min(until_ms, server_now_ms) if until_ms is not None else server_now_ms
    state = read_state(folder)
    if state is None or since_ms < state.since_ms:
        state = TradeState(exchange.id, symbol, since_ms, since_ms, _start_cursor(exchange,
                                                                                   since_ms))
    elif state.covered_to_ms >= end_ms:
        return state
    state.done = False
    _run(exchange, symbol, folder, state, end_ms, progress=progress, echo=echo,
         max_retries=max_retries, backoff_base=backoff_base)
    return state


def _start_cursor(exchange: Any, since_ms: int) -> str:
    # Kraken's cursor is in ns and exclusive: one ns before `since` includes a trade at `since`.
    return str(since_ms * 1_000_000 - 1) if exchange.id in _CURSOR_PAGING else str(since_ms)


def _run(exchange: Any, symbol: str, folder: Path, state: TradeState, end_ms: int, *,
         progress: bool, echo: Callable[[str], None] | None, max_retries: int,
         backoff_base: float) -> None:
    start_ms = state.covered_to_ms
    bar, advance = _progress_bar((end_ms - start_ms) // 60_000, progress,
                                 f"{exchange.id} {symbol} trades (minutes of history)")
    if echo is not None:
        echo(f"{exchange.id} {symbol} trades {pd.Timestamp(start_ms, unit='ms', tz='UTC')} .. "
             f"{pd.Timestamp(end_ms, unit='ms', tz='UTC')}: paged at the exchange's rate limit "
             f"({request_seconds(exchange):.2f} s per request of up to 1000 trades); the "
             "estimate of the total follows the first page.")
    said = False
    with bar:
        while not state.done:
            trades, next_cursor = _call(exchange, symbol, state.cursor, max_retries=max_retries,
                                        backoff_base=backoff_base)
            page = _page_frame(exchange, trades) if trades else None
            if page is not None and not said and echo is not None:
                echo(_estimate(exchange, symbol, page, end_ms - state.covered_to_ms))
                said = True
            before = (state.covered_to_ms - start_ms) // 60_000
            _advance(state, page, next_cursor, end_ms, folder)
            if advance is not None:
                advance((state.covered_to_ms - start_ms) // 60_000 - before)


def _advance(state: TradeState, page: pd.DataFrame | None, next_cursor: str | None, end_ms: int,
             folder: Path) -> None:
    """Store one page (day files first, then the state) and move the cursor on."""
    if page is None or len(page) == 0:
        state.covered_to_ms, state.done = end_ms, True  # caught up with the exchange's now
        _write_state(folder, state)
        return
    keep = page[(page["timestamp"] >= state.since_ms) & (page["timestamp"] < end_ms)]
    state.n_trades += _merge_days(folder, keep) if len(keep) else 0
    last_ms = int(page["timestamp"].iloc[-1])
    if last_ms >= end_ms or len(page) < 1000:
        # Past the end, or a short page: the exchange has nothing more before end_ms.
        state.covered_to_ms, state.done = end_ms, True
        state.cursor = _resume_cursor(state, end_ms, next_cursor, last_ms)
    else:
        cursor = next_cursor if next_cursor is not None else str(last_ms)
        if cursor == state.cursor:  # a full page that does not move on would loop forever
            raise ExchangeError(f"{state.exchange} {state.symbol} trades: a full page of "
                                f"trades did not move the cursor past {cursor}; cannot page on")
        state.cursor = cursor
        state.covered_to_ms = max(state.covered_to_ms, last_ms)  # same-ms trades may follow
    _write_state(folder, state)


def _resume_cursor(state: TradeState, end_ms: int, next_cursor: str | None, last_ms: int) -> str:
    """Where a later, longer download continues: just before ``end_ms`` (nothing skipped)."""
    if next_cursor is None:
        return str(min(last_ms, end_ms))
    return str(min(int(next_cursor), end_ms * 1_000_000 - 1))


__all__ = ["TRADE_COLUMNS", "TradeState", "covered_ohlcv", "download_trades", "read_state",
           "read_trades", "request_seconds", "trades_dir", "trades_to_ohlcv"]
