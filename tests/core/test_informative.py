"""The alignment rule of quantlib.core.informative, against hand-built frames and pandas."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from quantlib.core.bars import Bars
from quantlib.core.informative import (
    InformativeInput,
    aggregate,
    align,
    attach,
    informative,
    informative_warmup,
    timeframe_ns,
    visible_index,
)
from quantlib.core.timeframes import timeframe_to_seconds
from quantlib.data import resample
from quantlib.errors import DataError, ParameterError

HOUR = 3600 * 10**9


def frame(start: str, n: int, timeframe: str, symbol: str = "BTC/USDT", seed: int = 0,
          drop: tuple[int, ...] = ()) -> pd.DataFrame:
    """A canonical OHLCV frame of ``n`` bars with distinct prices (rows in ``drop`` removed)."""
    rng = np.random.default_rng(seed)
    index = pd.date_range(start, periods=n, freq=pd.Timedelta(seconds=timeframe_to_seconds(
        timeframe)), tz="UTC", name="timestamp")
    close = 100 + np.cumsum(rng.normal(size=n))
    open_ = np.r_[100.0, close[:-1]]
    df = pd.DataFrame({"open": open_, "high": np.maximum(open_, close) + rng.random(n),
                       "low": np.minimum(open_, close) - rng.random(n), "close": close,
                       "volume": rng.random(n) * 10}, index=index)
    df = df.drop(df.index[list(drop)])
    df.attrs.update({"symbol": symbol, "timeframe": timeframe})
    return df


def test_timeframe_ns_agrees_with_the_data_package():
    for tf in ("1m", "5m", "15m", "1h", "4h", "1d", "1w"):
        assert timeframe_ns(tf) == timeframe_to_seconds(tf) * 10**9
    with pytest.raises(ParameterError, match="'4x'"):
        timeframe_ns("4x")


def test_4h_bar_visible_from_the_1h_bar_that_closes_it_never_earlier():
    base = frame("2024-01-01 00:00", 24, "1h")
    trend = align(Bars.from_frame(base), InformativeInput("t", "4h"), None)
    opens = [None if j < 0 else pd.Timestamp(trend.bars.time[j], tz="UTC")
             for j in trend.index]
    stamp = lambda text: pd.Timestamp(f"2024-01-01 {text}", tz="UTC")  # noqa: E731
    assert opens[:3] == [None] * 3  # the 00:00-04:00 bar closes with the 03:00 bar
    assert opens[3] == stamp("00:00")
    # the 08:00-12:00 bar: not at 08:00, 09:00, 10:00 (the 04:00 bar is shown), yes at 11:00
    assert opens[8:11] == [stamp("04:00")] * 3
    assert opens[11] == stamp("08:00")
    assert opens[23] == stamp("20:00")  # the last 1h bar closes the last 4h bar at midnight
    # hand-built aggregation of the 08:00-12:00 bar
    hours = base.iloc[8:12]
    j = 2
    assert trend.bars.open[j] == hours["open"].iloc[0]
    assert trend.bars.high[j] == hours["high"].max()
    assert trend.bars.low[j] == hours["low"].min()
    assert trend.bars.close[j] == hours["close"].iloc[-1]
    assert trend.bars.volume[j] == pytest.approx(hours["volume"].sum(), rel=1e-15)


def test_the_forming_bar_is_never_handed_over():
    base = frame("2024-01-01 00:00", 10, "1h")  # ends at 10:00: the 08:00 bar is still forming
    trend = align(Bars.from_frame(base), InformativeInput("t", "4h"), None)
    assert len(trend.bars) == 2 and trend.bars.time[-1] == 4 * HOUR + trend.bars.time[0]
    # supplied 4h data that includes the forming bar (a feed that returns it) is cut too
    full4h = resample(frame("2024-01-01 00:00", 24, "1h"), "4h")
    cut = align(Bars.from_frame(base), InformativeInput("t", "4h"), Bars.from_frame(full4h))
    assert len(cut.bars) == 2
    np.testing.assert_array_equal(cut.index, trend.index)


def test_a_gap_in_the_base_data_is_a_missing_informative_bar():
    base = frame("2024-01-01 00:00", 24, "1h", drop=(9,))  # 09:00 missing: 08:00-12:00 partial
    with pytest.raises(DataError) as err:
        align(Bars.from_frame(base), InformativeInput("trend", "4h"), None)
    message = str(err.value)
    assert "BTC/USDT" in message and "4h" in message and "'trend'" in message
    assert "2024-01-01 08:00:00+00:00 is missing" in message
    assert "2024-01-01 11:00:00+00:00" in message  # the base bar that needed it


def test_a_gap_in_supplied_data_is_an_error_not_a_forward_fill():
    base = frame("2024-01-01 00:00", 24, "1h")
    other = frame("2024-01-01 00:00", 24, "1h", symbol="ETH/USDT", seed=1, drop=(5,))
    spec = InformativeInput("eth", symbol="ETH/USDT")
    with pytest.raises(DataError, match=r"ETH/USDT 1h.*2024-01-01 05:00:00\+00:00 is missing"):
        align(Bars.from_frame(base), spec, Bars.from_frame(other))


def test_a_gap_inside_the_declared_history_is_an_error():
    # supplied daily data starting before the base, with a hole the base never "sees" directly
    daily = frame("2023-12-20", 14, "1d", drop=(3,))
    base = frame("2024-01-01", 48, "1h")
    spec = InformativeInput("d", "1d", history=20)
    with pytest.raises(DataError, match=r"2023-12-23 00:00:00\+00:00 is missing from its history"):
        align(Bars.from_frame(base), spec, Bars.from_frame(daily))
    # a short enough history does not reach the hole
    align(Bars.from_frame(base), InformativeInput("d", "1d", history=3), Bars.from_frame(daily))


def test_a_1d_input_on_5m_bars():
    base = frame("2024-03-30 12:00", 12 * 24 * 3, "5m")  # 3 days from midday: DST-free UTC
    trend = align(Bars.from_frame(base), InformativeInput("d", "1d"), None)
    times = [datetime(2024, 3, 30, 12, tzinfo=UTC) + timedelta(minutes=5 * t)
             for t in range(len(base))]
    for t, when in enumerate(times):
        close = when + timedelta(minutes=5)
        # independent: the latest whole UTC day ending at or before the close, if covered
        day_end = close.replace(hour=0, minute=0)
        day_open = day_end - timedelta(days=1)
        expected = None if day_open < datetime(2024, 3, 31, tzinfo=UTC) else day_open
        got = None if trend.index[t] < 0 else datetime.fromtimestamp(
            trend.bars.time[trend.index[t]] / 1e9, tz=UTC)
        assert got == expected, (t, when)
    # 2024-03-30 is incomplete (starts at noon): no bar for it; 03-31 (the EU DST day) is whole
    assert len(trend.bars) == 2
    day = base.loc["2024-03-31"]
    assert trend.bars.high[0] == day["high"].max() and trend.bars.close[0] == day["close"].iloc[-1]


def test_aggregate_matches_quantlib_resample_on_complete_periods():
    base = frame("2024-01-01 00:00", 24 * 30, "1h", seed=3)
    ours = aggregate(Bars.from_frame(base), HOUR, 4 * HOUR).frame()
    theirs = resample(base, "4h")
    np.testing.assert_array_equal(ours.index.as_unit("ns").asi8, theirs.index.as_unit("ns").asi8)
    for column in ("open", "high", "low", "close"):
        np.testing.assert_array_equal(ours[column].to_numpy(), theirs[column].to_numpy())
    np.testing.assert_allclose(ours["volume"], theirs["volume"], rtol=1e-14)


def test_at_base_puts_nan_before_the_first_closed_bar():
    base = frame("2024-01-01 00:00", 8, "1h")
    trend = align(Bars.from_frame(base), InformativeInput("t", "4h"), None)
    out = trend.at_base(np.array([10.0, 20.0]))
    assert np.isnan(out[:3]).all()
    np.testing.assert_array_equal(out[3:], [10, 10, 10, 10, 20])
    with pytest.raises(ParameterError, match="one value per informative bar"):
        trend.at_base(np.ones(3))


def test_finer_informative_timeframe_and_unknown_inputs_are_refused():
    base = Bars.from_frame(frame("2024-01-01", 24, "1h"))
    with pytest.raises(ParameterError, match="finer than the base"):
        align(base, InformativeInput("x", "15m"), None)
    with pytest.raises(ParameterError, match="no such input"):
        attach(base, (InformativeInput("x", "4h"),), {"y": frame("2024-01-01", 4, "1h")})
    with pytest.raises(ParameterError, match="ETH/USDT.*no data"):
        attach(base, (InformativeInput("eth", symbol="ETH/USDT"),))
    with pytest.raises(ParameterError, match="no informative input 'z'"):
        informative(base, "z")


def test_informative_warmup_formula_is_tight():
    """(history+1)*ratio-2 bars before t always suffice, and one fewer sometimes does not."""
    need = informative_warmup((InformativeInput("t", "4h", history=3),), "1h")
    assert need == 14
    base = frame("2024-01-01", 24 * 4, "1h")
    spec = InformativeInput("t", "4h", history=3)
    worst = 0
    for t in range(need, len(base)):
        window = base.iloc[t - need: t + 1]
        aligned = align(Bars.from_frame(window), spec, None)
        assert aligned.index[-1] >= 2, t  # the visible bar and 2 before it are all there
        short = align(Bars.from_frame(base.iloc[t - need + 1: t + 1]), spec, None)
        worst = min(worst, short.index[-1] - 2)
    assert worst < 0  # with one bar less, some bar lacks part of its history


@pytest.mark.parametrize("name, timeframe, info_tf", [
    ("btc_usdt_1h_2022_2023.csv", "1h", "4h"),
    ("btc_usdt_5m_2021_05.csv", "5m", "1d"),
])
def test_alignment_matches_merge_asof_on_closed_bar_times(shared_data, name, timeframe, info_tf):
    base = shared_data(name)
    step = pd.Timedelta(seconds=timeframe_to_seconds(timeframe))
    # the longest gap-free stretch: gaps are errors by design, tested above
    breaks = np.flatnonzero(np.diff(base.index.as_unit("ns").asi8) != step.value)
    edges = np.r_[0, breaks + 1, len(base)]
    longest = int(np.argmax(np.diff(edges)))
    base = base.iloc[edges[longest]: edges[longest + 1]]
    base.attrs["timeframe"] = timeframe
    higher = resample(base, info_tf)
    # resample keeps partial periods (e.g. the first day starting mid-day); align drops them
    counts = base["close"].resample(pd.Timedelta(seconds=timeframe_to_seconds(info_tf)),
                                    origin="epoch").count()
    whole = counts[counts == timeframe_to_seconds(info_tf) // step.total_seconds()].index
    higher = higher.loc[higher.index.isin(whole)]
    aligned = align(Bars.from_frame(base), InformativeInput("h", info_tf), None)
    left = pd.DataFrame({"close_time": base.index + step})
    right = pd.DataFrame({"close_time": higher.index + pd.Timedelta(
        seconds=timeframe_to_seconds(info_tf)), "info_open": higher.index,
        "info_close": higher["close"].to_numpy()})
    merged = pd.merge_asof(left, right, on="close_time", direction="backward")
    ours = np.full(len(base), np.datetime64("NaT"), dtype="M8[ns]")
    seen = aligned.index >= 0
    ours[seen] = aligned.bars.time[aligned.index[seen]].view("M8[ns]")
    theirs = merged["info_open"].dt.tz_localize(None).to_numpy(dtype="M8[ns]")
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(aligned.at_base(aligned.bars.close),
                                  merged["info_close"].to_numpy())
    assert seen.sum() > len(base) // 2


def test_equal_timeframes_see_the_same_bar_and_nothing_before_it_closes():
    times = np.arange(5) * HOUR
    np.testing.assert_array_equal(visible_index(times, HOUR, times, HOUR), np.arange(5))
    # another symbol's bar that opens later than the base bar is not visible yet
    np.testing.assert_array_equal(visible_index(times, HOUR, times[2:], HOUR),
                                  [-1, -1, 0, 1, 2])
