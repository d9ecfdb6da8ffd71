"""Reading and writing OHLCV files (CSV and Parquet) into the canonical frame."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from quantlib.data.ohlcv import OHLCV_COLUMNS, validate_ohlcv
from quantlib.errors import DataError

# Header spellings seen in the wild (exchange dumps, freqtrade, Yahoo-style exports).
_ALIASES = {
    "timestamp": ("timestamp", "date", "datetime", "time", "open_time", "opentime", "ts", "t"),
    "open": ("open", "o"),
    "high": ("high", "h"),
    "low": ("low", "l"),
    "close": ("close", "c", "adj_close_not_used"),
    "volume": ("volume", "vol", "v", "volume_base", "base_volume"),
}


def _normalise_header(name: str) -> str:
    return str(name).strip().lower().replace(" ", "_")


def _rename_columns(raw: pd.DataFrame, path: Path) -> pd.DataFrame:
    lookup = {_normalise_header(c): c for c in raw.columns}
    mapping = {}
    for canonical, spellings in _ALIASES.items():
        found = next((lookup[s] for s in spellings if s in lookup), None)
        if found is None:
            raise DataError(
                f"{path}: no column for {canonical!r}; accepted headers: {list(spellings)}; "
                f"file has {list(raw.columns)}"
            )
        mapping[found] = canonical
    return raw[list(mapping)].rename(columns=mapping)


def _parse_timestamps(values: pd.Series, path: Path) -> pd.DatetimeIndex:
    if pd.api.types.is_datetime64_any_dtype(values):
        index = pd.DatetimeIndex(values)
        return index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.notna().all():
        # Epoch numbers: milliseconds are > 1e11 for any date after 1973, seconds are not.
        unit = "ms" if float(numeric.abs().max()) > 1e11 else "s"
        return pd.DatetimeIndex(pd.to_datetime(numeric.astype("int64"), unit=unit, utc=True))
    try:
        parsed = pd.to_datetime(values, utc=True, format="ISO8601")
    except (ValueError, TypeError):
        parsed = pd.to_datetime(values, utc=True, errors="coerce", format="mixed")
    bad = np.asarray(parsed.isna())
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(f"{path}: row {row}, column 'timestamp': cannot parse {values.iloc[row]!r} "
                        "as a date (expected ISO-8601 or epoch seconds/milliseconds)")
    return pd.DatetimeIndex(parsed)


def _to_float(frame: pd.DataFrame, path: Path) -> pd.DataFrame:
    out = {}
    for column in OHLCV_COLUMNS:
        converted = pd.to_numeric(frame[column], errors="coerce")
        bad = np.asarray(converted.isna() & frame[column].notna())
        if bad.any():
            row = int(np.argmax(bad))
            raise DataError(f"{path}: row {row} (timestamp {frame.index[row]}), column {column!r}: "
                            f"{frame[column].iloc[row]!r} is not a number")
        out[column] = converted.astype("float64").to_numpy()
    return pd.DataFrame(out, index=frame.index)


def _read_raw(path: Path) -> pd.DataFrame:
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            raw = pd.read_parquet(path)
            if isinstance(raw.index, pd.DatetimeIndex):
                raw = raw.reset_index()
            return raw
        if suffix in (".csv", ".txt", ".gz"):
            return pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot read the file: {exc}") from None
    raise DataError(f"{path}: unsupported file type {suffix!r}; expected .csv or .parquet")


def load_ohlcv(
    path: str | os.PathLike,
    *,
    timeframe: str | None = None,
    symbol: str | None = None,
    exchange: str | None = None,
    fill_gaps: bool = False,
) -> pd.DataFrame:
    """Read a CSV or Parquet OHLCV file into the canonical, validated frame.

    CSV timestamps may be epoch seconds, epoch milliseconds or ISO strings; headers may be spelt
    ``Date``/``Open``/``timestamp``/``Volume`` etc. Gaps are reported in
    ``df.attrs["n_missing_bars"]`` (and by :func:`validate_ohlcv`), filled only on request.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.csv"
    >>> _ = p.write_text("Date,Open,High,Low,Close,Volume\\n1700000000,1,2,0.5,1.5,10\\n")
    >>> load_ohlcv(p)["close"].iloc[0]
    np.float64(1.5)
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    raw = _read_raw(path)
    if raw.empty:
        raise DataError(f"{path}: the file holds no rows")
    frame = _rename_columns(raw, path)
    index = _parse_timestamps(frame["timestamp"], path)
    frame = frame.drop(columns="timestamp").set_index(index.rename("timestamp"))
    frame = _to_float(frame, path)
    stem = path.stem
    frame.attrs.update(
        source="file",
        source_string=f"file:{path}",
        exchange=exchange or "file",
        symbol=symbol or stem,
    )
    summary = validate_ohlcv(frame, timeframe, fill_gaps=fill_gaps, name=str(path))
    out = summary.frame
    out.attrs["n_missing_bars"] = summary.n_missing
    out.attrs["n_misaligned_bars"] = len(summary.misaligned)
    return out


def save_ohlcv(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write ``df`` atomically (temp file in the same folder, then rename) as Parquet or CSV.

    A crash mid-write leaves the previous file intact, never a truncated one.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        frame = df.copy()
        frame.attrs = {k: v for k, v in df.attrs.items() if isinstance(v, str | int | float)}
        if path.suffix.lower() in (".parquet", ".pq"):
            frame.to_parquet(tmp_name)
        else:
            out = frame.copy()
            out.index = out.index.strftime("%Y-%m-%dT%H:%M:%SZ")
            out.index.name = "timestamp"
            out.to_csv(tmp_name)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


__all__ = ["load_ohlcv", "save_ohlcv"]
