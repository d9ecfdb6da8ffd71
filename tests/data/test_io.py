"""load_ohlcv reads the CSV and Parquet variants seen in the wild into the canonical frame."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantlib.data import DataError, load_ohlcv, save_ohlcv, synthetic_ohlcv
from tests.conftest import shared_data_path

ROWS = [
    (1704067200, 100.0, 110.0, 95.0, 105.0, 12.5),
    (1704070800, 105.0, 108.0, 101.0, 102.0, 7.0),
    (1704074400, 102.0, 104.0, 99.0, 103.5, 3.25),
]
EXPECTED_INDEX = pd.DatetimeIndex(["2024-01-01 00:00", "2024-01-01 01:00", "2024-01-01 02:00"],
                                  tz="UTC", name="timestamp")


def _write(tmp_path, header, stamp):
    path = tmp_path / "bars.csv"
    lines = [",".join(header)] + [",".join([stamp(r[0])] + [str(v) for v in r[1:]]) for r in ROWS]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    ("header", "stamp"),
    [
        (["timestamp", "open", "high", "low", "close", "volume"], lambda s: str(s)),
        (["timestamp", "open", "high", "low", "close", "volume"], lambda s: str(s * 1000)),
        (["Date", "Open", "High", "Low", "Close", "Volume"],
         lambda s: pd.Timestamp(s, unit="s").strftime("%Y-%m-%d %H:%M:%S")),
        (["date", "open", "high", "low", "close", "volume"],
         lambda s: pd.Timestamp(s, unit="s", tz="UTC").isoformat()),
    ],
    ids=["epoch-seconds", "epoch-millis", "Date-header-naive", "iso-with-offset"],
)
def test_csv_variants_load_to_the_same_frame(tmp_path, header, stamp):
    df = load_ohlcv(_write(tmp_path, header, stamp))
    assert df.index.equals(EXPECTED_INDEX)
    assert list(df.columns) == ["open", "high", "low", "close", "volume"]
    assert (df.dtypes == np.float64).all()
    np.testing.assert_array_equal(df.to_numpy(), np.array([r[1:] for r in ROWS]))
    assert df.attrs["source"] == "file" and df.attrs["timeframe"] == "1h"


def test_parquet_round_trip_is_exact(tmp_path):
    df = synthetic_ohlcv(300, seed=5).ohlcv
    path = save_ohlcv(df, tmp_path / "x.parquet")
    back = load_ohlcv(path)
    pd.testing.assert_frame_equal(back, df, check_freq=False, check_index_type=False)


def test_csv_round_trip_keeps_values(tmp_path):
    df = synthetic_ohlcv(100, seed=6).ohlcv
    back = load_ohlcv(save_ohlcv(df, tmp_path / "x.csv"))
    np.testing.assert_allclose(back.to_numpy(), df.to_numpy(), rtol=1e-12)
    assert back.index.equals(df.index)


HEADER = "timestamp,open,high,low,close,volume\n"


@pytest.mark.parametrize(("name", "text", "problem"), [
    ("bad.csv", HEADER + "1704067200,1,2,0.5,1.5,10\n1704070800,1,2,oops,1.5,10\n",
     r"bad\.csv: row 1 .*'low': 'oops' is not a number"),
    ("nohigh.csv", "timestamp,open,low,close,volume\n1704067200,1,0.5,1.5,10\n",
     r"nohigh\.csv: no column for 'high'"),
    ("dates.csv",
     "date,open,high,low,close,volume\n2024-01-01,1,2,0.5,1.5,1\nnot-a-date,1,2,0.5,1.5,1\n",
     r"row 1 \(line 3 of the file\), column 'timestamp': cannot parse 'not-a-date'"),
    ("hl.csv", HEADER + "1704067200,10,9,8,9.5,1\n", r"hl\.csv: row 0 .*'high'"),
], ids=["non_numeric_cell_names_file_row_and_column", "missing_header_lists_what_is_accepted",
        "unparseable_date_names_the_row", "validation_error_in_file_names_the_file"])
def test_a_bad_csv_is_named(tmp_path, name, text, problem):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(DataError, match=problem):
        load_ohlcv(path)


def test_missing_file_and_unknown_suffix(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        load_ohlcv(tmp_path / "nope.csv")
    other = tmp_path / "x.xlsx"
    other.write_text("x")
    with pytest.raises(DataError, match="unsupported file type '.xlsx'"):
        load_ohlcv(other)


def test_save_is_atomic_when_writing_fails(tmp_path, monkeypatch):
    good = synthetic_ohlcv(50, seed=1).ohlcv
    path = save_ohlcv(good, tmp_path / "cache.parquet")
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", crash)
    with pytest.raises(OSError):
        save_ohlcv(synthetic_ohlcv(60, seed=2).ohlcv, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["cache.parquet"]  # no temp file left behind


def test_real_file_loads_with_first_and_last_close_from_sources_md():
    df = load_ohlcv(shared_data_path("btc_usdt_1h_2022_2023.csv"))
    assert df["close"].iloc[0] == 46656.13 and df["close"].iloc[-1] == 22351.43
    assert df.index[0] == pd.Timestamp("2022-01-01 00:00", tz="UTC")
