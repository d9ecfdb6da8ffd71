"""The trade cache of one market and the candles built from it (no exchange needed).

Layout and crash safety: see :mod:`quantlib.data.trades` (which downloads into this cache).
:func:`trades_to_ohlcv` builds UTC-aligned candles of any timeframe from cached trades;
:func:`covered_ohlcv` builds them when the cache covers a requested span, which is how
:func:`quantlib.data.fetch.fetch_ohlcv` falls back on trades for short-history markets.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from quantlib.core.timeframes import timeframe_to_seconds
from quantlib.data.cache import default_cache_dir, write_cache
from quantlib.data.ohlcv import validate_ohlcv
from quantlib.data.timeframes import date_text
from quantlib.errors import DataError

TRADE_COLUMNS = ("id", "timestamp", "price", "amount", "side")
_DAY_MS = 86_400_000


@dataclass
class TradeState:
    """What the trade cache of one market holds completely, and where to resume."""

    exchange: str
    symbol: str
    since_ms: int
    covered_to_ms: int
    cursor: str
    n_trades: int = 0
    done: bool = False


def trades_dir(cache_dir: str | os.PathLike | None, exchange_id: str, symbol: str) -> Path:
    """Folder of a market's trade cache: ``<cache_dir>/<exchange>/trades/<BASE>-<QUOTE>``.

    Examples
    --------
    >>> trades_dir("data", "kraken", "BTC/USD").as_posix()
    'data/kraken/trades/BTC-USD'
    """
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return root / exchange_id / "trades" / symbol.replace("/", "-").replace(":", "_")


def read_state(folder: Path) -> TradeState | None:
    """The cache's ``state.json``, or None when nothing was downloaded yet."""
    path = folder / "state.json"
    if not path.exists():
        return None
    try:
        return TradeState(**json.loads(path.read_text()))
    except (ValueError, TypeError) as exc:
        raise DataError(f"{path}: not a quantlib trade-cache state ({exc}); delete the folder "
                        "to download the trades again") from None


def _write_state(folder: Path, state: TradeState) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".state.", suffix=".tmp", dir=folder)
    with os.fdopen(fd, "w") as handle:
        json.dump(state.__dict__, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, folder / "state.json")


def _day_path(folder: Path, day_ms: int) -> Path:
    return folder / f"{pd.Timestamp(day_ms, unit='ms', tz='UTC'):%Y-%m-%d}.parquet"


def _merge_days(folder: Path, page: pd.DataFrame) -> int:
    """Merge ``page`` into its day files (unique by id); return how many trades were new."""
    added = 0
    for day_ms, part in page.groupby(page["timestamp"] // _DAY_MS * _DAY_MS):
        path = _day_path(folder, int(day_ms))
        old = pd.read_parquet(path) if path.exists() else None
        merged = part if old is None else pd.concat([old, part], ignore_index=True)
        merged = merged.drop_duplicates("id").sort_values(["timestamp", "id"], kind="stable")
        added += len(merged) - (0 if old is None else len(old))
        write_cache(merged.reset_index(drop=True), path)
    return added


def read_trades(cache_dir: str | os.PathLike | None, exchange_id: str, symbol: str,
                start_ms: int, end_ms: int) -> pd.DataFrame:
    """Cached trades with ``start_ms <= timestamp < end_ms``, sorted by time then id."""
    folder = trades_dir(cache_dir, exchange_id, symbol)
    days = range(start_ms // _DAY_MS * _DAY_MS, end_ms, _DAY_MS)
    parts = [pd.read_parquet(p) for p in (_day_path(folder, d) for d in days) if p.exists()]
    if not parts:
        return pd.DataFrame({c: np.zeros(0, np.int64 if c in ("id", "timestamp") else float)
                             for c in TRADE_COLUMNS})
    trades = pd.concat(parts, ignore_index=True)
    keep = (trades["timestamp"] >= start_ms) & (trades["timestamp"] < end_ms)
    return trades.loc[keep].reset_index(drop=True)


def trades_to_ohlcv(trades: pd.DataFrame, timeframe: str, start_ms: int,
                    end_ms: int) -> pd.DataFrame:
    """UTC-aligned OHLCV bars of the trades; only bars inside ``[start_ms, end_ms)``.

    ``trades`` needs ``timestamp`` (epoch ms), ``id``, ``price``, ``amount``. Bars open at
    multiples of the timeframe from the first at or after ``start_ms``; a bar is built only if
    it ends at or before ``end_ms`` and holds at least one trade (empty intervals are gaps).
    """
    tf_ms = timeframe_to_seconds(timeframe) * 1000
    first_open = -(-start_ms // tf_ms) * tf_ms
    last_end = end_ms // tf_ms * tf_ms
    order = np.lexsort((trades["id"].to_numpy(), trades["timestamp"].to_numpy()))
    stamps = trades["timestamp"].to_numpy(np.int64)[order]
    inside = (stamps >= first_open) & (stamps < last_end)
    stamps = stamps[inside]
    price = trades["price"].to_numpy(np.float64)[order][inside]
    amount = trades["amount"].to_numpy(np.float64)[order][inside]
    bins = stamps // tf_ms
    opens_at = np.flatnonzero(np.r_[True, bins[1:] != bins[:-1]]) if len(bins) else np.zeros(
        0, np.int64)
    closes_at = np.r_[opens_at[1:] - 1, len(bins) - 1] if len(bins) else opens_at
    values = {
        "open": price[opens_at], "high": np.maximum.reduceat(price, opens_at) if len(bins) else
        price, "low": np.minimum.reduceat(price, opens_at) if len(bins) else price,
        "close": price[closes_at],
        "volume": np.add.reduceat(amount, opens_at) if len(bins) else amount,
    }
    index = pd.to_datetime(bins[opens_at] * tf_ms, unit="ms", utc=True).rename("timestamp")
    return pd.DataFrame(values, index=index)[["open", "high", "low", "close", "volume"]]


def covered_ohlcv(exchange_id: str, symbol: str, timeframe: str, since_ms: int,
                  until_ms: int | None, cache_dir: str | os.PathLike | None) -> pd.DataFrame | None:
    """Candles built from the trade cache when it covers ``[since, until)``, else None.

    Without ``until`` the candles run to the end of the fetched span.
    """

    folder = trades_dir(cache_dir, exchange_id, symbol)
    state = read_state(folder)
    end_ms = until_ms if until_ms is not None else (state.covered_to_ms if state else 0)
    if state is None or since_ms < state.since_ms or end_ms > state.covered_to_ms:
        return None
    trades = read_trades(cache_dir, exchange_id, symbol, since_ms, end_ms)
    frame = trades_to_ohlcv(trades, timeframe, since_ms, end_ms)
    validate_ohlcv(frame, timeframe, name=f"{folder} ({timeframe} candles from trades)")
    parts = [exchange_id, symbol, timeframe, date_text(since_ms)]
    if until_ms is not None:
        parts.append(date_text(until_ms))
    frame.attrs = {"source": "ccxt", "exchange": exchange_id, "symbol": symbol,
                   "timeframe": timeframe, "source_string": ":".join(parts),
                   "candles": "built from trades", "trades_cache": str(folder)}
    return frame


__all__ = ["TRADE_COLUMNS", "TradeState", "covered_ohlcv", "read_state", "read_trades",
           "trades_dir", "trades_to_ohlcv"]
