"""Bars (OHLCV as numpy arrays) and the registry's two kinds of inputs: built-in kinds compute on
Bars, pandas-written kinds on frames, and both give the same targets from a frame or from Bars
(the live runner hands Bars built from its own buffers)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quantlib.core.bars import COLUMNS, Bars, as_bars, indicator_cache
from quantlib.core.registry import StrategyKind, get_kind, list_kinds
from quantlib.data import synthetic_ohlcv
from quantlib.errors import DataError, ParameterError


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return synthetic_ohlcv(n_bars=400, seed=11).ohlcv


def _bars_from_buffers(df: pd.DataFrame) -> Bars:
    # what the live runner does: its own (5, n) buffer and int64 ns times, no pandas involved
    block = np.vstack([df[c].to_numpy() for c in COLUMNS])
    return Bars.from_arrays(df.index.as_unit("ns").asi8.copy(), block, dict(df.attrs))


def test_from_frame_holds_the_frames_columns_times_and_attrs(frame):
    bars = Bars.from_frame(frame)
    assert len(bars) == len(frame)
    for name in COLUMNS:
        column = bars.column(name)
        assert column.dtype == np.float64 and column.flags.c_contiguous
        np.testing.assert_array_equal(column, frame[name].to_numpy())
    np.testing.assert_array_equal(bars.time, frame.index.as_unit("ns").asi8)
    assert bars.attrs == frame.attrs and bars.frame() is frame


def test_from_arrays_builds_the_canonical_frame(frame):
    rebuilt = _bars_from_buffers(frame).frame()
    nanoseconds = frame.set_axis(frame.index.as_unit("ns"))  # the index unit is not part of it
    pd.testing.assert_frame_equal(rebuilt, nanoseconds, check_freq=False)
    assert rebuilt.index.name == "timestamp" and str(rebuilt.index.tz) == "UTC"
    assert rebuilt.attrs["timeframe"] == frame.attrs["timeframe"]


def test_labels_spell_timestamps_like_pandas(frame):
    bars = _bars_from_buffers(frame)
    for row in (0, 7, 399):
        assert bars.label(row) == str(frame.index[row])
    assert Bars(None, {"close": np.ones(3)}).label(2) == "row 2"
    sub_second = np.array([1_500_000_000_250_000_000])  # 2017-07-14 02:40:00.25
    assert Bars(sub_second, {"close": np.ones(1)}).label(0) == \
        str(pd.Timestamp(sub_second[0], unit="ns", tz="UTC"))


def test_bad_inputs_are_named():
    with pytest.raises(DataError, match="lacks column 'volume'"):
        Bars(None, {"close": np.ones(3)}).column("volume")
    with pytest.raises(DataError, match="column 'close' is not numeric"):
        Bars.from_frame(pd.DataFrame({"close": ["a", "b"]}))
    with pytest.raises(DataError, match="columns of different lengths"):
        Bars(None, {"close": np.ones(3), "open": np.ones(2)})
    with pytest.raises(DataError, match="expected an OHLCV DataFrame or Bars, got list"):
        as_bars([1.0, 2.0])
    with pytest.raises(DataError, match=r"expected a \(5, n\) block"):
        Bars.from_arrays(None, np.ones((4, 3)))


def test_a_sweep_converts_each_frame_once(frame):
    assert Bars.from_frame(frame) is not Bars.from_frame(frame)
    with indicator_cache():
        assert Bars.from_frame(frame) is Bars.from_frame(frame)


def _params(name: str) -> dict | None:
    # the kinds that need fitted parameters come with their own tests (regime, ML), and so
    # does funding_carry, which reads a funding column OHLCV frames lack (tests/backtest/test_perp*)
    kind = get_kind(name)
    if name.startswith(("regime_", "xgb_", "funding_")) or name.startswith("test_"):
        return None
    return kind.defaults()


@pytest.mark.parametrize("name", [k for k in list_kinds() if _params(k) is not None])
def test_every_kind_gives_the_same_targets_from_bars_and_from_the_frame(frame, name):
    kind = get_kind(name)
    from_frame = kind.signals(frame, _params(name))
    from_bars = kind.signals(_bars_from_buffers(frame), _params(name))
    assert np.count_nonzero(from_frame) > 0 or name == "grid"
    np.testing.assert_array_equal(from_bars, from_frame)


def test_builtin_kinds_take_bars_and_frame_kinds_take_frames(frame):
    seen = {}

    def pandas_kind(df, params):
        seen["type"] = type(df)
        seen["index"] = df.index
        return (df["close"] > df["close"].rolling(5).mean()).to_numpy(dtype=float)

    kind = StrategyKind("test_bars_frame_kind", params=(), signal=pandas_kind)
    from_bars = kind.signals(_bars_from_buffers(frame), {})
    assert seen["type"] is pd.DataFrame
    pd.testing.assert_index_equal(seen["index"], frame.index.as_unit("ns"))
    np.testing.assert_array_equal(from_bars, kind.signals(frame, {}))
    assert all(get_kind(k).inputs == "bars" for k in list_kinds() if not k.startswith("test_"))


def test_a_non_finite_signal_names_the_bar_time(frame):
    kind = StrategyKind("test_bars_nan", params=(), inputs="bars",
                        signal=lambda bars, p: np.where(np.arange(len(bars)) == 3, np.nan, 0.0))
    with pytest.raises(ParameterError, match=r"not finite at row 3 \(2024-01-01 03:00:00\+00:00\)"):
        kind.signals(_bars_from_buffers(frame), {})
    with pytest.raises(ParameterError, match="inputs 'table' is not one of"):
        StrategyKind("test_bars_bad", params=(), signal=lambda d, p: d, inputs="table")
