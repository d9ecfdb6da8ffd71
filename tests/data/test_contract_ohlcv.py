"""docs/ARCHITECTURE.md "Canonical OHLCV frame": the rules no other test states for every loader.

Each frame any entry point of quantlib.data returns (a sample, a file, a resample, a perp's
candles and mark, a Bars turned back into a frame) is checked against the contract written
out here by hand: index, columns, dtypes, attrs, and that ``source_string`` loads it again.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quantlib.core.bars import Bars
from quantlib.data import (
    load,
    load_ohlcv,
    load_perp,
    resample,
    save_ohlcv,
    synthetic_ohlcv,
    timeframe_to_seconds,
)

ROOT = Path(__file__).resolve().parents[2]
COLUMNS = ["open", "high", "low", "close", "volume"]
ATTRS = {"source", "source_string", "exchange", "symbol", "timeframe"}
CCXT_TIMEFRAMES = {"1m", "5m", "15m", "1h", "4h", "1d"}


def contract_problems(df: pd.DataFrame) -> list[str]:
    """What ``df`` breaks of the canonical frame's contract, by hand (not validate_ohlcv)."""
    problems = []
    index = df.index
    if not isinstance(index, pd.DatetimeIndex) or str(index.tz) != "UTC":
        problems.append("index is not a tz-aware UTC DatetimeIndex")
    if index.name != "timestamp":
        problems.append(f"index named {index.name!r}")
    stamps = index.asi8
    if len(stamps) > 1 and not (np.diff(stamps) > 0).all():
        problems.append("index not strictly increasing (or not unique)")
    if list(df.columns) != COLUMNS:
        problems.append(f"columns {list(df.columns)}")
    if any(str(dtype) != "float64" for dtype in df.dtypes):
        problems.append(f"dtypes {df.dtypes.astype(str).tolist()}")
    return problems


def attrs_problems(df: pd.DataFrame, source: str) -> list[str]:
    problems = []
    if not ATTRS <= set(df.attrs):
        problems.append(f"attrs lack {sorted(ATTRS - set(df.attrs))}")
    if df.attrs.get("source") != source:
        problems.append(f"source {df.attrs.get('source')!r}, expected {source!r}")
    if df.attrs.get("timeframe") not in CCXT_TIMEFRAMES:
        problems.append(f"timeframe {df.attrs.get('timeframe')!r} is not ccxt style")
    return problems


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    return load("sample:seed=3,bars=120")


def test_a_sample_is_canonical_and_its_source_string_loads_it_again(sample):
    assert contract_problems(sample) == [] and attrs_problems(sample, "synthetic") == []
    assert sample.attrs["source_string"] == "sample:seed=3,bars=120"
    pd.testing.assert_frame_equal(load(sample.attrs["source_string"]), sample)


def test_a_file_loads_canonical_with_file_attrs(sample, tmp_path):
    path = tmp_path / "bars.csv"
    save_ohlcv(sample, path)
    loaded = load(f"file:{path}")
    assert contract_problems(loaded) == [] and attrs_problems(loaded, "file") == []
    assert load_ohlcv(loaded.attrs["source_string"].removeprefix("file:")).equals(loaded)
    np.testing.assert_array_equal(loaded.to_numpy(), sample.to_numpy())


def test_a_resample_is_canonical_at_the_new_timeframe(sample):
    four = resample(sample, "4h")
    assert contract_problems(four) == [] and attrs_problems(four, "synthetic") == []
    assert four.attrs["timeframe"] == "4h"
    # provenance: the string that loads the source, then `@` the timeframe it was resampled to
    assert four.attrs["source_string"] == "sample:seed=3,bars=120@4h"
    # each 4h bar from its four 1h bars, written out by hand
    first = sample.iloc[:4]
    assert four.iloc[0].tolist() == [first.open.iloc[0], first.high.max(), first.low.min(),
                                     first.close.iloc[-1], first.volume.sum()]


def test_bars_turned_back_into_a_frame_are_canonical(sample):
    frame = Bars.from_frame(sample).frame()
    assert contract_problems(frame) == []
    assert frame.attrs["source_string"] == sample.attrs["source_string"]


def test_synthetic_market_fields():
    market = synthetic_ohlcv(n_bars=400, timeframe="1h", seed=5)
    assert contract_problems(market.ohlcv) == [] and market.ohlcv.attrs["source"] == "synthetic"
    regimes = market.regimes
    assert regimes.dtype.kind == "i" and regimes.index.equals(market.ohlcv.index)
    k = market.transition_matrix.shape[0]
    assert market.transition_matrix.shape == (k, k)
    np.testing.assert_allclose(market.transition_matrix.sum(axis=1), 1.0)
    assert set(np.unique(regimes)) <= set(range(k))
    # 0 = calmest: the declared per-state volatility rises with the state number
    assert len(market.regime_vol) == k and np.all(np.diff(market.regime_vol) > 0)


@pytest.mark.parametrize("timeframe, seconds", [("1m", 60), ("5m", 300), ("15m", 900),
                                                ("1h", 3600), ("4h", 14400), ("1d", 86400)])
def test_timeframe_strings_in_seconds(timeframe, seconds):
    assert timeframe_to_seconds(timeframe) == seconds


def test_a_perp_load_is_candles_mark_and_funding_on_one_grid():
    perp = load_perp("sample:seed=2,bars=100")
    assert contract_problems(perp.ohlcv) == [] and contract_problems(perp.mark) == []
    assert perp.mark.index.equals(perp.ohlcv.index)
    assert (perp.mark.volume == 0).all()
    funding = perp.funding
    assert isinstance(funding.index, pd.DatetimeIndex) and str(funding.index.tz) == "UTC"
    assert funding.index.name == "timestamp" and funding.index.is_monotonic_increasing
    assert funding.index.is_unique
    assert list(funding.columns) == ["funding_rate"] and funding.funding_rate.dtype == "float64"
    assert funding.attrs["funding_interval"] == "8h"
    # payments within [first open, last open + timeframe): the one at the last bar's end is not
    step = pd.Timedelta(hours=1)
    start, end = perp.ohlcv.index[0], perp.ohlcv.index[-1] + step
    assert (funding.index >= start).all() and (funding.index < end).all()
    hours = pd.date_range(start.ceil("8h"), end - step, freq="8h")
    assert funding.index.equals(hours.rename("timestamp"))


def test_the_shared_real_data_is_never_copied_into_the_repository():
    shared = ROOT.parent / "shared" / "data"
    if not shared.is_dir():
        pytest.skip(f"{shared} is absent (a user's clone has no ../shared/data)")
    sizes = {p.stat().st_size: p.name for p in shared.iterdir() if p.is_file()
             and p.stat().st_size > 10_000}
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                             check=True).stdout.decode().split("\0")
    copies = []
    for name in filter(None, tracked):
        path = ROOT / name
        if path.is_file() and path.stat().st_size in sizes:
            original = shared / sizes[path.stat().st_size]
            if path.read_bytes() == original.read_bytes():
                copies.append(f"{name} = ../shared/data/{original.name}")
    assert copies == []


def test_the_contract_check_can_fail(sample):
    # Control: a naive index, a renamed index, an int column and a reversed order are seen.
    broken = sample.iloc[::-1].copy()
    broken.index = broken.index.tz_localize(None).rename("time")
    broken["volume"] = broken["volume"].astype("int64")
    assert contract_problems(broken) == [
        "index is not a tz-aware UTC DatetimeIndex", "index named 'time'",
        "index not strictly increasing (or not unique)",
        "dtypes ['float64', 'float64', 'float64', 'float64', 'int64']"]
    assert attrs_problems(sample.assign(), "file") == ["source 'synthetic', expected 'file'"]
