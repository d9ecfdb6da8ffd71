"""validate_ohlcv: every DataError names the row (timestamp), the column and the problem."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from quantlib.data import DataError, find_gaps, synthetic_ohlcv, validate_ohlcv
from tests.conftest import SHARED_DATA, shared_data_path


@pytest.fixture
def bars() -> pd.DataFrame:
    return synthetic_ohlcv(50, seed=3).ohlcv.copy()


def _set(df: pd.DataFrame, row: int, column: str, value: float) -> pd.DataFrame:
    df.iloc[row, df.columns.get_loc(column)] = value
    return df


@pytest.mark.parametrize(
    ("column", "value", "problem"),
    [
        ("close", np.nan, "NaN"),
        ("volume", np.inf, "infinite"),
        ("open", 0.0, "non-positive price"),
        ("low", -5.0, "non-positive price"),
        ("volume", -1.0, "negative volume"),
    ],
)
def test_bad_value_names_row_timestamp_and_column(bars, column, value, problem):
    row = 17
    _set(bars, row, column, value)
    with pytest.raises(DataError) as err:
        validate_ohlcv(bars)
    message = str(err.value)
    assert f"row {row}" in message
    assert str(bars.index[row]) in message
    assert f"'{column}'" in message
    assert problem in message


@pytest.mark.parametrize(("row", "column", "bound", "factor", "problem"), [
    (9, "high", max, 0.999, r"below max\(open, close\)"),
    (30, "low", min, 1.001, r"above min\(open, close\)"),
], ids=["high_below_open_close", "low_above_open_close"])
def test_high_or_low_inside_the_body_is_reported(bars, row, column, bound, factor, problem):
    body_edge = bound(bars["open"].iloc[row], bars["close"].iloc[row])
    _set(bars, row, column, body_edge * factor)
    with pytest.raises(DataError, match=rf"row {row} .*'{column}'.*{problem}"):
        validate_ohlcv(bars)


def test_missing_and_extra_columns_are_named(bars):
    with pytest.raises(DataError, match=r"missing column\(s\) \['volume'\]"):
        validate_ohlcv(bars.drop(columns="volume"))
    with pytest.raises(DataError, match=r"unexpected column\(s\) \['vwap'\]"):
        validate_ohlcv(bars.assign(vwap=1.0))


def test_duplicate_timestamp_names_the_row(bars):
    index = bars.index.tolist()
    index[12] = index[11]
    bars.index = pd.DatetimeIndex(index, name="timestamp")
    with pytest.raises(DataError, match=rf"row 12 \(timestamp {re.escape(str(index[12]))}\).*duplicate"):
        validate_ohlcv(bars)


def test_unsorted_timestamp_names_the_row(bars):
    index = bars.index.tolist()
    index[20], index[21] = index[21], index[20]
    bars.index = pd.DatetimeIndex(index, name="timestamp")
    with pytest.raises(DataError, match=r"row 21 .*'timestamp': not sorted"):
        validate_ohlcv(bars)


def test_naive_or_non_utc_index_is_refused(bars):
    with pytest.raises(DataError, match="tz-aware UTC"):
        validate_ohlcv(bars.tz_localize(None))
    with pytest.raises(DataError, match="tz-aware UTC"):
        validate_ohlcv(bars.tz_convert("Europe/Paris"))


def test_integer_column_is_refused(bars):
    bars["volume"] = np.arange(len(bars))
    with pytest.raises(DataError, match="'volume' must be float64"):
        validate_ohlcv(bars)


def test_gaps_are_reported_not_filled(bars):
    holes = bars.drop(bars.index[[5, 6, 7, 40]])
    summary = validate_ohlcv(holes, "1h")
    assert len(summary.frame) == len(holes)  # nothing filled silently
    assert summary.n_missing == 4
    assert summary.gaps["missing_bars"].tolist() == [3, 1]
    assert summary.gaps["start"].iloc[0] == bars.index[5]
    assert summary.gaps["end"].iloc[0] == bars.index[7]


def test_fill_gaps_is_explicit_and_flat(bars):
    holes = bars.drop(bars.index[[5, 6]])
    filled = validate_ohlcv(holes, "1h", fill_gaps=True).frame
    assert filled.index.equals(bars.index)
    prev_close = bars["close"].iloc[4]
    for row in (5, 6):
        assert filled.iloc[row][["open", "high", "low", "close"]].tolist() == [prev_close] * 4
        assert filled["volume"].iloc[row] == 0.0
    pd.testing.assert_frame_equal(filled.drop(bars.index[[5, 6]]), holes)


def test_gap_count_from_first_principles():
    # Independent count: every hourly slot between first and last bar, minus bars on the grid.
    index = pd.DatetimeIndex(["2024-01-01 00:00", "2024-01-01 01:00", "2024-01-01 04:00",
                              "2024-01-01 05:30", "2024-01-01 07:00"], tz="UTC")
    gaps = find_gaps(index, "1h")
    slots = pd.date_range(index[0], index[-1], freq="1h")
    assert gaps["missing_bars"].sum() == len(slots.difference(index))  # 02,03,05,06 -> 4


def _sources_table() -> dict[str, dict[str, int]]:
    text = (SHARED_DATA / "SOURCES.md").read_text()
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) > 8 and cells[0].endswith(".csv"):
            rows[cells[0]] = {"rows": int(cells[4]), "missing": int(cells[7]),
                              "duplicates": int(cells[8])}
    return rows


@pytest.mark.parametrize("name", ["btc_usdt_1h_2017_2020.csv", "btc_usdt_1h_2022_2023.csv",
                                  "btc_usdt_1h_2024_2025.csv", "btc_usdt_5m_2021_05.csv",
                                  "eth_usdt_1h_2022_2023.csv", "sol_usdt_1h_2022_2023.csv"])
def test_real_files_validate_and_gaps_match_sources_md(name):
    from quantlib.data import load_ohlcv

    path = shared_data_path(name)
    expected = _sources_table()[name]
    df = load_ohlcv(path)
    summary = validate_ohlcv(df)
    assert summary.n_bars == expected["rows"]
    assert summary.n_missing == expected["missing"]


def test_off_grid_bars_in_real_data_are_reported():
    from quantlib.data import load_ohlcv

    df = load_ohlcv(shared_data_path("btc_usdt_1h_2017_2020.csv"))
    summary = validate_ohlcv(df)
    off = df.index[summary.misaligned]
    assert len(off) > 0 and all(ts.minute != 0 or ts.second != 0 for ts in off)
    with pytest.raises(DataError, match="not on the 1h grid"):
        validate_ohlcv(df, fill_gaps=True)
