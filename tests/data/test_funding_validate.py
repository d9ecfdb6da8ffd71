"""validate_funding: the canonical funding frame, gaps and off-grid payments, named errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantlib.data.perp import infer_funding_interval, validate_funding
from quantlib.errors import DataError


def _funding(times: list[str], rates: list[float] | None = None) -> pd.DataFrame:
    index = pd.DatetimeIndex(times, tz="UTC", name="timestamp")
    values = rates if rates is not None else [1e-4] * len(times)
    return pd.DataFrame({"funding_rate": np.asarray(values, dtype=np.float64)}, index=index)


def _grid(start: str, n: int, hours: int) -> list[str]:
    return [str(t) for t in pd.date_range(start, periods=n, freq=f"{hours}h")]


def test_gaps_listed_against_a_plain_python_grid_walk():
    times = _grid("2024-01-01", 30, 8)
    kept = [t for i, t in enumerate(times) if i not in (3, 4, 10, 25, 26, 27)]
    summary = validate_funding(_funding(kept))
    # Reference: walk the 8 h grid from the first to the last payment, collecting runs.
    present = {pd.Timestamp(t, tz="UTC") for t in kept}
    runs, run = [], []
    slot = pd.Timestamp(kept[0], tz="UTC")
    while slot <= pd.Timestamp(kept[-1], tz="UTC"):
        if slot in present:
            if run:
                runs.append((run[0], run[-1], len(run)))
            run = []
        else:
            run.append(slot)
        slot += pd.Timedelta(hours=8)
    got = list(summary.gaps.itertuples(index=False, name=None))
    assert got == runs and summary.n_missing == 6 and summary.interval == "8h"
    assert summary.n_payments == 24 and summary.n_off_grid == 0


def test_interval_from_attrs_else_inferred_and_off_grid_payments_counted():
    four_hourly = _funding(_grid("2024-01-01", 12, 4))
    assert infer_funding_interval(four_hourly.index) == "4h"
    assert validate_funding(four_hourly).n_missing == 0
    # Told 8 h, the same payments are half off the 8 h grid.
    assert validate_funding(four_hourly, "8h").n_off_grid == 6
    four_hourly.attrs["funding_interval"] = "8h"
    assert validate_funding(four_hourly).interval == "8h"
    late = _funding(["2024-01-01 00:00", "2024-01-01 08:00", "2024-01-01 16:00:05"])
    summary = validate_funding(late)
    assert summary.n_off_grid == 1 and summary.interval == "8h"
    assert infer_funding_interval(late.index[:1]) is None


@pytest.mark.parametrize("frame, message", [
    (_funding(["2024-01-01 08:00", "2024-01-01 00:00"]),
     r"funding row 1 \(timestamp 2024-01-01 00:00:00\+00:00\): the time is earlier than"),
    (_funding(["2024-01-01 00:00", "2024-01-01 00:00"]), r"funding row 1 .*duplicates"),
    (_funding(["2024-01-01", "2024-01-01 08:00", "2024-01-01 16:00"], [1e-4, np.inf, np.nan]),
     r"row 1 \(timestamp 2024-01-01 08:00:00\+00:00\), field 'funding_rate' is not a finite "
     r"number \(and 1 more rows\)"),
    (_funding(["2024-01-01"], [1.5]), r"field 'funding_rate' is 1.5, 100 % or more .*percent"),
    (pd.DataFrame({"rate": [1e-4]}, index=pd.DatetimeIndex(["2024-01-01"], tz="UTC")),
     r"columns must be exactly \['funding_rate'\], got \['rate'\]"),
    (pd.DataFrame({"funding_rate": [1e-4]}, index=pd.DatetimeIndex(["2024-01-01"])),
     "tz-aware UTC DatetimeIndex"),
    (pd.DataFrame({"funding_rate": [1e-4]},
                  index=pd.DatetimeIndex(["2024-01-01"], tz="Europe/Paris")),
     "UTC DatetimeIndex .*got tz Europe/Paris"),
    (pd.DataFrame({"funding_rate": ["0.0001"]}, index=pd.DatetimeIndex(["2024-01-01"], tz="UTC")),
     "must be float64"),
])
def test_bad_frames_name_row_and_field(frame, message):
    with pytest.raises(DataError, match=rf"^BTC funding: .*{message}"):
        validate_funding(frame, name="BTC funding")


def test_times_beyond_nanosecond_arithmetic_refused():
    # Found by the fuzz (a flipped byte dated a payment 2309): a DataError, not an overflow.
    far = pd.DatetimeIndex(["2024-01-01", "2309-06-05"], tz="UTC").as_unit("us")
    with pytest.raises(DataError, match=r"x: funding times must lie before 2116 .* 2309-06-05"):
        validate_funding(pd.DataFrame({"funding_rate": [1e-4, 1e-4]}, index=far), name="x")


def test_bad_interval_named():
    with pytest.raises(DataError, match="x.parquet: funding interval: timeframe 'eight'"):
        validate_funding(_funding(["2024-01-01"]), "eight", name="x.parquet")


@pytest.mark.parametrize("seed", range(8))
def test_single_interval_gaps_equal_the_ohlcv_grid_walker(seed):
    """On one interval, the step-wise gap finder agrees with find_gaps (written separately for
    candles) and misaligned_rows, with random deletions and a few payments seconds late."""
    from quantlib.data.ohlcv import find_gaps, misaligned_rows

    rng = np.random.default_rng(seed)
    hours = int(rng.choice([1, 4, 8]))
    index = pd.date_range("2024-01-01", periods=300, freq=f"{hours}h", tz="UTC", name="timestamp")
    keep = rng.random(300) > 0.15
    keep[0] = keep[-1] = True
    index = index[keep]
    late = rng.random(len(index)) < 0.03
    late[0] = False
    index = pd.DatetimeIndex(index + pd.to_timedelta(np.where(late, 7, 0), unit="s"))
    frame = pd.DataFrame({"funding_rate": np.full(len(index), 1e-4)}, index=index)
    expected = find_gaps(index, f"{hours}h")
    for summary in (validate_funding(frame), validate_funding(frame, f"{hours}h")):
        got = summary.gaps.rename(columns={"missing_payments": "missing_bars"})
        pd.testing.assert_frame_equal(got.reset_index(drop=True), expected.reset_index(drop=True),
                                      check_dtype=False)
        assert summary.n_off_grid == len(misaligned_rows(index, f"{hours}h")) == late.sum()
        assert summary.interval_changes == []


def test_a_change_from_8h_to_4h_is_reported_not_taken_for_gaps():
    # Two days at 8 h (00, 08, 16), then 4 h from 2024-01-03 00:00 with 20:00 missing.
    eight = _grid("2024-01-01", 6, 8)
    four = [t for t in _grid("2024-01-03", 12, 4) if t != "2024-01-03 20:00:00"]
    summary = validate_funding(_funding(eight + four))
    # The first payment after which they come every 4 h.
    assert summary.interval_changes == [(pd.Timestamp("2024-01-03 00:00", tz="UTC"), "8h", "4h")]
    assert summary.n_missing == 1 and summary.n_off_grid == 0
    assert summary.gaps["start"].iloc[0] == pd.Timestamp("2024-01-03 20:00", tz="UTC")
    # Told one 8 h grid, the 4 h payments at 04, 12, 20 are off it instead.
    fixed = validate_funding(_funding(eight + four), "8h")
    assert fixed.interval_changes == [] and fixed.n_off_grid == 5
    # Fewer than 3 equal steps settle nothing: one 8 h market with a lost payment.
    assert validate_funding(_funding(_grid("2024-01-01", 2, 8) + ["2024-01-02 00:00"])).n_missing == 1
