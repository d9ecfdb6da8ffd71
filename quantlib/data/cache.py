"""The on-disk OHLCV cache of exchange data: one Parquet file per exchange, symbol and timeframe.

Layout: ``<cache_dir>/<exchange>/<BASE>-<QUOTE>_<timeframe>.parquet`` where ``cache_dir`` defaults
to ``$QUANTLIB_DATA_DIR`` or ``./data``. Each file holds only closed candles, plus attrs (kept in
the Parquet file's metadata, :func:`stored_metadata` reads them without loading the data) naming
the market (``exchange``, ``symbol``, ``timeframe``), saying which span of open times has been
fetched completely (``covered_from_ms`` inclusive, ``covered_to_ms`` exclusive), so a later call
knows what it still has to ask for, and ``partial_history`` when the user accepted an exchange
history shorter than asked.

Writes are atomic: the frame goes to a temporary file in the same folder, is flushed to disk, then
``os.replace``-d over the old file. A crash at any point leaves either the old or the new file,
never a truncated one.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from quantlib.core.timeframes import timeframe_to_seconds
from quantlib.data.ohlcv import validate_ohlcv
from quantlib.errors import DataError, ParameterError

COVERED_FROM = "covered_from_ms"
COVERED_TO = "covered_to_ms"


def default_cache_dir() -> Path:
    """``$QUANTLIB_DATA_DIR`` when set, else ``./data``."""
    return Path(os.environ.get("QUANTLIB_DATA_DIR", "data"))


def cache_path(cache_dir: str | os.PathLike | None, exchange_id: str, symbol: str,
               timeframe: str) -> Path:
    """Cache file of a market: ``<cache_dir>/<exchange>/<BASE>-<QUOTE>_<timeframe>.parquet``.

    Examples
    --------
    >>> cache_path("data", "kraken", "BTC/USD", "1h").as_posix()
    'data/kraken/BTC-USD_1h.parquet'
    """
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    # Derivative symbols ("BTC/USDT:USDT") carry a settle suffix that is not file-name safe.
    stem = symbol.replace("/", "-").replace(":", "_")
    return root / exchange_id / f"{stem}_{timeframe}.parquet"


def read_cache(path: Path) -> pd.DataFrame | None:
    """The cached frame, or None when there is no cache file yet.

    Raises :class:`DataError` naming the file when it exists but is not a readable canonical
    frame (it cannot be produced by :func:`write_cache`, but a user may have edited it).
    """
    return read_cached_frame(path, "cache file", lambda frame: validate_ohlcv(
        frame, frame.attrs.get("timeframe"), name=str(path)))


def read_cached_frame(path: Path, what: str, validate: Callable[[pd.DataFrame], object]
                      ) -> pd.DataFrame | None:
    """A cache file written by :func:`write_cache`, checked, or None when there is none yet.

    Parameters
    ----------
    path : Path
        The Parquet file.
    what : str
        What the file is, for messages: ``"cache file"``, ``"funding cache file"``.
    validate : callable
        Raises :class:`DataError` when the frame's rows are not what the cache holds.

    Raises
    ------
    DataError
        Naming the file, when it is unreadable, its rows fail ``validate`` or it lacks the
        covered-span attrs (a user may have edited or replaced it).
    """
    if not path.exists():
        return None
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types for a damaged file
        raise DataError(f"{path}: the {what} is unreadable ({exc}); delete it to fetch the "
                        "data again") from None
    validate(frame)
    if COVERED_FROM not in frame.attrs or COVERED_TO not in frame.attrs:
        raise DataError(f"{path}: attrs {COVERED_FROM!r}/{COVERED_TO!r} are missing: not a "
                        f"quantlib {what}; delete it to fetch the data again")
    return frame


def stored_metadata(path: Path) -> dict:
    """What a Parquet file says about itself: the attrs quantlib stored with it (exchange,
    symbol, timeframe, covered span, partial history), completed from a cache path
    ``<exchange>/<BASE>-<QUOTE>_<timeframe>.parquet`` when the file does not say.

    Examples
    --------
    >>> stored_metadata(Path("data/kraken/BTC-USD_1h.parquet"))  # no such file: the path speaks
    {'exchange': 'kraken', 'symbol': 'BTC/USD', 'timeframe': '1h'}
    """
    meta: dict = {}
    if path.exists() and path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        try:
            raw = (pq.read_schema(path).metadata or {}).get(b"PANDAS_ATTRS")
            meta = dict(json.loads(raw)) if raw else {}
        except (OSError, ValueError):
            meta = {}
    for key, value in _parse_cache_path(path).items():
        meta.setdefault(key, value)
    return meta


def _parse_cache_path(path: Path) -> dict:
    """``{exchange, symbol, timeframe}`` of a path laid out as :func:`cache_path` does, else {}."""
    stem, _, timeframe = path.stem.rpartition("_")
    base, dash, quote = stem.partition("-")
    if not (stem and dash and base and quote) or path.parent.name in ("", "."):
        return {}
    try:
        timeframe_to_seconds(timeframe)
    except ParameterError:
        return {}
    return {"exchange": path.parent.name, "symbol": f"{base}/{quote}", "timeframe": timeframe}


def write_cache(frame: pd.DataFrame, path: Path) -> Path:
    """Write ``frame`` to ``path`` atomically (temp file in the same folder + ``os.replace``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            frame.to_parquet(handle)
            handle.flush()
            # Without fsync a power cut after the rename could leave an empty file behind it.
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


__all__ = ["COVERED_FROM", "COVERED_TO", "cache_path", "default_cache_dir", "read_cache",
           "read_cached_frame", "stored_metadata", "write_cache"]
