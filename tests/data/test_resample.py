"""resample: first open, max high, min low, last close, summed volume, UTC-aligned bars."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantlib.data import resample, synthetic_ohlcv
from quantlib.errors import ParameterError
from tests.conftest import shared_data_path


def _hand_built() -> pd.DataFrame:
    # Starts at 02:00, so the first 4h bar (00:00-04:00) holds only two hours.
    index = pd.date_range("2024-01-01 02:00", periods=7, freq="1h", tz="UTC", name="timestamp")
    df = pd.DataFrame({
        "open":   [10.0, 11.0, 12.0, 13.0, 14.0, 15.0, 16.0],
        "high":   [11.5, 12.5, 13.5, 14.9, 14.5, 16.5, 17.0],
        "low":    [9.5, 10.5, 11.5, 12.5, 13.1, 14.5, 15.5],
        "close":  [11.0, 12.0, 13.0, 14.0, 15.0, 16.0, 16.5],
        "volume": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0],
    }, index=index)
    df.attrs["timeframe"] = "1h"
    return df


def test_hand_built_example():
    out = resample(_hand_built(), "4h")
    # 00:00 bar: 02:00, 03:00. 04:00 bar: 04:00..07:00. 08:00 bar (only 08:00) is incomplete.
    assert out.index.tolist() == [pd.Timestamp("2024-01-01 00:00", tz="UTC"),
                                  pd.Timestamp("2024-01-01 04:00", tz="UTC")]
    assert out.iloc[0].tolist() == [10.0, 12.5, 9.5, 12.0, 3.0]
    assert out.iloc[1].tolist() == [12.0, 16.5, 11.5, 16.0, 18.0]
    assert out.attrs["timeframe"] == "4h"


def test_incomplete_last_bar_kept_only_when_asked():
    out = resample(_hand_built(), "4h", keep_incomplete=True)
    assert len(out) == 3
    assert out.iloc[2].tolist() == [16.0, 17.0, 15.5, 16.5, 7.0]


def test_complete_last_bar_is_kept():
    df = synthetic_ohlcv(48, seed=1).ohlcv  # 00:00 .. 23:00 next day: exactly 12 4h bars
    assert len(resample(df, "4h")) == 12


def test_finer_target_is_refused():
    with pytest.raises(ParameterError, match="finer"):
        resample(_hand_built(), "15m")


def test_matches_an_independent_loop_on_real_data_with_gaps():
    df = pd.read_csv(shared_data_path("btc_usdt_1h_2024_2025.csv"), parse_dates=["timestamp"])
    from quantlib.data import load_ohlcv

    canonical = load_ohlcv(shared_data_path("btc_usdt_1h_2024_2025.csv"))
    out = resample(canonical, "1d")
    groups: dict = {}
    for row in df.itertuples():
        day = row.timestamp.floor("1D")
        g = groups.setdefault(day, [row.open, row.high, row.low, row.close, 0.0])
        g[1], g[2] = max(g[1], row.high), min(g[2], row.low)
        g[3] = row.close
        g[4] += row.volume
    days = sorted(groups)[:-1] if df.timestamp.iloc[-1].hour != 23 else sorted(groups)
    expected = np.array([groups[d] for d in days])
    assert out.index.tolist() == days
    np.testing.assert_allclose(out.to_numpy(), expected, rtol=1e-12)
