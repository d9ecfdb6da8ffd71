"""load_ohlcv on hostile files: file line numbers in messages, wrongly typed Parquet columns,
out-of-range epochs, and a hypothesis fuzz of random bytes as CSV and Parquet replay/data
files. Every outcome is a canonical frame or a DataError naming the file; never anything else."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quantlib.data import load, load_ohlcv, save_ohlcv, synthetic_ohlcv, validate_ohlcv
from quantlib.errors import DataError

HEADER = "timestamp,open,high,low,close,volume\n"


def _rows(n: int, start: int = 1704067200) -> list[str]:
    return [f"{start + 3600 * i},10,11,9,10.5,1" for i in range(n)]


def test_csv_error_says_the_line_of_the_file_header_being_line_1(tmp_path):
    rows = _rows(5)
    rows[3] = rows[3].replace(",11,", ",10.2,")  # high 10.2 < close 10.5 on data row 3
    path = tmp_path / "bars.csv"
    path.write_text(HEADER + "\n".join(rows) + "\n")
    with pytest.raises(DataError) as info:
        load_ohlcv(path)
    stamp = pd.Timestamp(1704067200 + 3 * 3600, unit="s", tz="UTC")
    # Row 3 counted from 0 is the 4th data row: line 5 (line 1 is the header).
    assert str(info.value) == (f"{path}: row 3 (line 5 of the file, timestamp {stamp}), column "
                               "'high': high 10.2 is below max(open, close) = 10.5")
    assert path.read_text().splitlines()[5 - 1] == rows[3]


def test_blank_lines_count_as_lines(tmp_path):
    rows = _rows(4)
    rows[2] = rows[2].replace(",9,", ",x,")
    path = tmp_path / "gappy.csv"
    text = HEADER + rows[0] + "\n\n\n" + "\n".join(rows[1:]) + "\n"
    path.write_text(text)
    with pytest.raises(DataError, match=r"row 2 \(line 6 of the file, timestamp .*'low': 'x' is "
                                        r"not a number"):
        load_ohlcv(path)
    assert text.splitlines()[6 - 1] == rows[2]


def test_unsorted_and_unparseable_rows_name_their_lines(tmp_path):
    rows = _rows(4)
    rows[1], rows[2] = rows[2], rows[1]
    path = tmp_path / "unsorted.csv"
    path.write_text(HEADER + "\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"row 2 \(line 4 of the file, timestamp .*not sorted"):
        load_ohlcv(path)
    dates = tmp_path / "dates.csv"
    dates.write_text(HEADER + "2024-01-01,1,2,0.5,1.5,1\n2024-01-01T01:00,1,2,0.5,1.5,1\n"
                     "soon,1,2,0.5,1.5,1\n")
    with pytest.raises(DataError, match=r"dates\.csv: row 2 \(line 4 of the file\), column "
                                        r"'timestamp': cannot parse 'soon'"):
        load_ohlcv(dates)


def test_parquet_errors_count_records_from_1(tmp_path):
    df = synthetic_ohlcv(20, seed=3).ohlcv
    df.iloc[7, df.columns.get_loc("volume")] = -1.0
    path = tmp_path / "neg.parquet"
    df.to_parquet(path)
    with pytest.raises(DataError) as info:
        load_ohlcv(path)
    assert str(info.value) == (f"{path}: row 7 (record 8 of the file, timestamp {df.index[7]}), "
                               "column 'volume': negative volume -1.0")


@pytest.mark.parametrize("dtype", ["bool", "datetime64[ns, UTC]"])
def test_parquet_column_of_the_wrong_type_says_so(tmp_path, dtype):
    df = synthetic_ohlcv(10, seed=1).ohlcv.reset_index()
    df["open"] = (np.arange(10) % 2 == 0) if dtype == "bool" else df["timestamp"]
    path = tmp_path / "typed.parquet"
    df.to_parquet(path)
    with pytest.raises(DataError) as info:
        load_ohlcv(path)
    stored = pd.read_parquet(path)["open"].dtype  # pyarrow may store another time unit
    assert str(info.value) == (f"{path}: column 'open' has type {stored}; expected numbers "
                               "(integers or decimals)")


def test_boolean_csv_column_and_boolean_timestamps(tmp_path):
    path = tmp_path / "bool.csv"
    path.write_text(HEADER + "1704067200,True,2,0.5,1.5,1\n1704070800,False,2,0.5,1.5,1\n")
    with pytest.raises(DataError, match=r"column 'open' has type bool; expected numbers"):
        load_ohlcv(path)
    stamps = tmp_path / "boolstamps.csv"
    stamps.write_text(HEADER + "True,1,2,0.5,1.5,1\n")
    with pytest.raises(DataError, match=r"column 'timestamp' has type bool"):
        load_ohlcv(stamps)


def test_epoch_beyond_pandas_dates_is_a_data_error(tmp_path):
    path = tmp_path / "far.csv"
    path.write_text(HEADER + "1704067200000,1,2,0.5,1.5,1\n1e30,1,2,0.5,1.5,1\n")
    with pytest.raises(DataError, match=r"far\.csv: row 1 \(line 3 of the file\), column "
                                        r"'timestamp': 1e\+30 is not a usable epoch time in "
                                        r"milliseconds"):
        load_ohlcv(path)


def test_directory_and_gzip_csv(tmp_path):
    with pytest.raises(DataError, match="is a directory"):
        load_ohlcv(tmp_path)
    rows = _rows(3)
    rows[1] = rows[1].replace(",9,", ",-9,")
    import gzip

    path = tmp_path / "bars.csv.gz"
    path.write_bytes(gzip.compress((HEADER + "\n".join(rows) + "\n").encode()))
    with pytest.raises(DataError, match=r"row 1 \(line 3 of the file, .*'low'"):
        load_ohlcv(path)


def test_in_memory_validation_keeps_its_plain_row_numbers():
    df = synthetic_ohlcv(10, seed=1).ohlcv
    df.iloc[4, 1] = 0.0
    df.attrs = {}
    with pytest.raises(DataError) as info:
        validate_ohlcv(df)
    assert str(info.value) == f"row 4 (timestamp {df.index[4]}), column 'high': non-positive price 0.0"


# ------------------------------------------------------------------------------------ fuzzing
def _valid_csv_bytes(n: int) -> bytes:
    return (HEADER + "\n".join(_rows(n)) + "\n").encode()


def _valid_parquet_bytes(n: int) -> bytes:
    buffer = io.BytesIO()
    synthetic_ohlcv(n + 1, seed=n).ohlcv.to_parquet(buffer)
    return buffer.getvalue()


@st.composite
def _damaged(draw, make):
    """A valid file with random bytes overwritten, inserted or cut off (reaches the parsers'
    deeper paths, which purely random bytes rarely do)."""
    data = bytearray(make(draw(st.integers(1, 6))))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        action = draw(st.sampled_from(["overwrite", "insert", "truncate"]))
        junk = draw(st.binary(min_size=1, max_size=6))
        if action == "overwrite":
            data[at:at + len(junk)] = junk
        elif action == "insert":
            data[at:at] = junk
        else:
            del data[at:]
    return bytes(data)


_CSV_TEXT = st.lists(st.lists(st.sampled_from(
    ["1704067200", "1704070800", "2024-01-01", "1e30", "-5", "0", "nan", "inf", "True", "x",
     "", "10", "9.5", "11", '"', "1e11", "99999999999999999999"]), min_size=1, max_size=7),
    min_size=0, max_size=5).map(lambda rows: (HEADER + "\n".join(",".join(r) for r in rows))
                                .encode())

_FUZZ = settings(max_examples=300, deadline=5000,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def _check_outcome(path) -> None:
    try:
        df = load_ohlcv(path)
    except DataError as exc:
        assert str(exc).startswith(f"{path}: ") and len(str(exc)) > len(str(path)) + 5
        return
    # Accepted: the canonical frame, which validates again on its own.
    assert list(df.columns) == ["open", "high", "low", "close", "volume"]
    assert str(df.index.tz) == "UTC" and df.index.is_monotonic_increasing
    validate_ohlcv(df)


@pytest.mark.timeout(900)
@_FUZZ
@given(data=st.binary(max_size=300) | _damaged(_valid_csv_bytes) | _CSV_TEXT)
def test_fuzz_random_bytes_as_csv(tmp_path, data):
    path = tmp_path / "replay.csv"
    path.write_bytes(data)
    _check_outcome(path)


@pytest.mark.timeout(900)
@_FUZZ
@given(data=st.binary(max_size=300) | _damaged(_valid_parquet_bytes))
def test_fuzz_random_bytes_as_parquet(tmp_path, data):
    path = tmp_path / "replay.parquet"
    path.write_bytes(data)
    _check_outcome(path)


@pytest.mark.timeout(300)
@settings(max_examples=60, deadline=5000,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(columns=st.dictionaries(
    st.sampled_from(["timestamp", "open", "high", "low", "close", "volume", "Open", "x"]),
    st.sampled_from(["float", "int", "bool", "str", "date", "none", "huge"]), min_size=1))
def test_fuzz_parquet_column_types(tmp_path, columns):
    n = 4
    makers = {"float": lambda: np.linspace(1.0, 2.0, n), "int": lambda: np.arange(1, n + 1),
              "bool": lambda: np.ones(n, dtype=bool), "str": lambda: ["a"] * n,
              "date": lambda: pd.date_range("2024-01-01", periods=n, freq="h", tz="UTC"),
              "none": lambda: [None] * n, "huge": lambda: np.full(n, 1e300)}
    frame = pd.DataFrame({name: makers[kind]() for name, kind in columns.items()})
    path = tmp_path / "typed.parquet"
    frame.to_parquet(path)
    _check_outcome(path)


def test_saved_file_round_trips_through_the_source_string(tmp_path):
    # The control for the fuzz: a real file is accepted exactly.
    df = synthetic_ohlcv(50, seed=9).ohlcv
    for name in ("ok.csv", "ok.parquet"):
        back = load(f"file:{save_ohlcv(df, tmp_path / name)}")
        np.testing.assert_allclose(back.to_numpy(), df.to_numpy(), rtol=1e-12)


def test_parquet_keeps_its_stored_market_but_not_a_synthetic_one(tmp_path):
    df = synthetic_ohlcv(30, seed=2).ohlcv
    df.attrs.update(source="ccxt", exchange="kraken", symbol="BTC/USD")
    back = load_ohlcv(save_ohlcv(df, tmp_path / "cached.parquet"))
    assert (back.attrs["exchange"], back.attrs["symbol"]) == ("kraken", "BTC/USD")
    assert back.attrs["source"] == "file"
    assert back.attrs["source_string"] == f"file:{tmp_path / 'cached.parquet'}"
    # Explicit names still win; synthetic data names no market; CSV has no metadata.
    assert load_ohlcv(tmp_path / "cached.parquet", symbol="ETH/USD").attrs["symbol"] == "ETH/USD"
    synthetic = load_ohlcv(save_ohlcv(synthetic_ohlcv(30).ohlcv, tmp_path / "syn.parquet"))
    assert (synthetic.attrs["exchange"], synthetic.attrs["symbol"]) == ("file", "syn")
    assert load_ohlcv(save_ohlcv(df, tmp_path / "plain.csv")).attrs["symbol"] == "plain"


def test_bars_less_than_a_second_apart_are_a_data_error(tmp_path):
    # Epoch seconds 1.0, 1.5, 2.0, ...: no timeframe quantlib knows (it used to infer "0w" and
    # fail with a timeframe parse error).
    path = tmp_path / "fast.csv"
    path.write_text(HEADER + "".join(f"{1704067200 + 0.5 * i},1,2,0.5,1.5,1\n" for i in range(4)))
    with pytest.raises(DataError) as info:
        load_ohlcv(path)
    assert str(info.value) == (f"{path}: the bars are mostly 0 days 00:00:00.500000 apart; "
                               "expected a bar length of whole seconds (at least 1s)")
