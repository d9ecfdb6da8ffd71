"""Reading and writing OHLCV files (CSV and Parquet) into the canonical frame."""

from __future__ import annotations

import gzip
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


class _FileRows:
    """Where each data row of a file sits in it, for messages: ``line N of the file`` for CSV
    (the header is line 1; blank lines, which pandas skips, still count) and ``record N of the
    file`` for Parquet (counting from 1). Lines are only counted when an error is reported."""

    def __init__(self, path: Path, n_rows: int) -> None:
        self.path, self.n_rows = path, n_rows
        self.parquet = path.suffix.lower() in (".parquet", ".pq")
        self._lines: list[int] | None = None

    def _line_numbers(self) -> list[int]:
        if self._lines is None:
            opener = gzip.open if self.path.suffix.lower() == ".gz" else open
            try:
                with opener(self.path, "rb") as fh:
                    filled = [n for n, line in enumerate(fh, start=1) if line.strip(b"\r\n")]
            except (OSError, EOFError):
                filled = []
            # header + one line per row, or the file has quoted line breaks: then say nothing.
            self._lines = filled[1:] if len(filled) == self.n_rows + 1 else []
        return self._lines

    def __call__(self, row: int) -> str | None:
        if self.parquet:
            return f"record {row + 1} of the file"
        lines = self._line_numbers()
        return f"line {lines[row]} of the file" if 0 <= row < len(lines) else None


def _at(rows: _FileRows, row: int) -> str:
    origin = rows(row)
    return f"row {row} ({origin})" if origin else f"row {row}"


def _rename_columns(raw: pd.DataFrame, path: Path) -> pd.DataFrame:
    lookup: dict[str, object] = {}
    for column in raw.columns:
        lookup.setdefault(_normalise_header(column), column)
    mapping = {}
    for canonical, spellings in _ALIASES.items():
        found = next((lookup[s] for s in spellings if s in lookup), None)
        if found is None:
            raise DataError(
                f"{path}: no column for {canonical!r}; accepted headers: {list(spellings)}; "
                f"file has {_short_list(list(raw.columns))}"
            )
        mapping[found] = canonical
    return raw[list(mapping)].rename(columns=mapping)


def _short_list(values: list) -> str:
    text = repr(values)
    return text if len(text) <= 200 else text[:197] + "..."


def _check_column_type(values: pd.Series, column: str, path: Path) -> None:
    # A true/false (or date) column is a wrong file, not row 0's "non-positive price 0.0".
    dtype = values.dtype
    if (pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_datetime64_any_dtype(dtype)
            or pd.api.types.is_timedelta64_dtype(dtype)
            or isinstance(dtype, pd.CategoricalDtype) or pd.api.types.is_complex_dtype(dtype)):
        raise DataError(f"{path}: column {column!r} has type {dtype}; expected numbers "
                        "(integers or decimals)")


def _parse_timestamps(values: pd.Series, path: Path, rows: _FileRows) -> pd.DatetimeIndex:
    if pd.api.types.is_bool_dtype(values.dtype):
        raise DataError(f"{path}: column 'timestamp' has type bool; expected dates or epoch "
                        "seconds/milliseconds")
    if pd.api.types.is_datetime64_any_dtype(values):
        index = pd.DatetimeIndex(values)
        return index.tz_localize("UTC") if index.tz is None else index.tz_convert("UTC")
    numeric = pd.to_numeric(values, errors="coerce")
    if len(numeric) and numeric.notna().all():
        return _epoch_index(numeric, path, rows)
    try:
        parsed = pd.to_datetime(values, utc=True, format="ISO8601")
    except (ValueError, TypeError, OverflowError):
        parsed = pd.to_datetime(values.astype(str), utc=True, errors="coerce", format="mixed")
    bad = np.asarray(parsed.isna())
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(f"{path}: {_at(rows, row)}, column 'timestamp': cannot parse "
                        f"{_short_value(values.iloc[row])} as a date (expected ISO-8601 or epoch "
                        "seconds/milliseconds)")
    return pd.DatetimeIndex(parsed)


def _epoch_index(numeric: pd.Series, path: Path, rows: _FileRows) -> pd.DatetimeIndex:
    """Epoch numbers: milliseconds are > 1e11 for any date after 1973, seconds are not."""
    values = numeric.to_numpy(dtype="float64")
    unit = "ms" if float(np.abs(values).max()) > 1e11 else "s"
    # pandas holds dates from 1677 to 2262 (int64 nanoseconds); an epoch number outside that
    # is no bar time (and would overflow rather than fail cleanly).
    limit = 9.2e12 if unit == "ms" else 9.2e9
    bad = ~np.isfinite(values) | (np.abs(values) > limit)
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(f"{path}: {_at(rows, row)}, column 'timestamp': {float(values[row])!r} is "
                        f"not a usable epoch time in {'milliseconds' if unit == 'ms' else 'seconds'}"
                        " (expected a date between 1677 and 2262)")
    whole = values == np.round(values)
    exact = values.astype("int64") if whole.all() else values  # ints convert without rounding
    return pd.DatetimeIndex(pd.to_datetime(exact, unit=unit, utc=True))


def _short_value(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _to_float(frame: pd.DataFrame, path: Path, rows: _FileRows) -> pd.DataFrame:
    out = {}
    for column in OHLCV_COLUMNS:
        _check_column_type(frame[column], column, path)
        converted = pd.to_numeric(frame[column], errors="coerce")
        bad = np.asarray(converted.isna() & frame[column].notna())
        if bad.any():
            row = int(np.argmax(bad))
            origin = rows(row)
            where = f"row {row} ({origin + ', ' if origin else ''}timestamp {frame.index[row]})"
            raise DataError(f"{path}: {where}, column {column!r}: "
                            f"{_short_value(frame[column].iloc[row])} is not a number")
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
    except (OSError, ValueError, EOFError, MemoryError) as exc:
        # pyarrow, the C parser and zlib each have their own errors for a damaged file; every
        # one of them means the same thing here.
        raise DataError(f"{path}: cannot read the file: {_one_line(exc)}") from None
    except Exception as exc:  # noqa: BLE001 - e.g. pyarrow's ArrowException, csv.Error
        raise DataError(f"{path}: cannot read the file: {type(exc).__name__}: "
                        f"{_one_line(exc)}") from None
    raise DataError(f"{path}: unsupported file type {suffix!r}; expected .csv or .parquet")


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 300 else text[:297] + "..."


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
    Errors name the file, the row (from 0) and where it is in the file (``line N of the file``,
    the header being line 1; ``record N`` in Parquet), the column and what is wrong.

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
    if path.is_dir():
        raise DataError(f"{path}: is a directory, expected a .csv or .parquet file")
    raw = _read_raw(path)
    if raw.empty:
        raise DataError(f"{path}: the file holds no rows")
    rows = _FileRows(path, len(raw))
    frame = _rename_columns(raw, path)
    index = _parse_timestamps(frame["timestamp"], path, rows)
    frame = frame.drop(columns="timestamp").set_index(index.rename("timestamp"))
    frame = _to_float(frame, path, rows)
    # A Parquet file written from a frame (save_ohlcv, the exchange cache) keeps the frame's
    # attrs: its market is a better name than the file's. (The timeframe is still inferred
    # from the bars themselves: metadata must not relabel them.)
    stored = {key: value for key, value in raw.attrs.items()
              if key in ("exchange", "symbol", "partial_history") and isinstance(value, str)
              and value
              and raw.attrs.get("source") != "synthetic"}  # SYN/USD names no market
    frame.attrs.update(
        source="file",
        source_string=f"file:{path}",
        exchange=exchange or stored.get("exchange") or "file",
        symbol=symbol or stored.get("symbol") or path.stem,
    )
    if "partial_history" in stored:  # a shorter history accepted at fetch time stays visible
        frame.attrs["partial_history"] = stored["partial_history"]
    summary = validate_ohlcv(frame, timeframe, fill_gaps=fill_gaps, name=str(path),
                             row_origin=rows)
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
