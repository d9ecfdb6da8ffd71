"""A funding cache that is damaged in any way is a DataError naming the file, never a crash."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quantlib.data.perp_fetch import funding_cache_path, read_funding_cache
from quantlib.data.synthetic import synthetic_funding, synthetic_ohlcv
from quantlib.errors import DataError


def _valid_bytes() -> bytes:
    funding = synthetic_funding(synthetic_ohlcv(80, seed=1).ohlcv, seed=1)
    funding.attrs.update(covered_from_ms=0, covered_to_ms=1)
    buffer = io.BytesIO()
    funding.to_parquet(buffer)
    return buffer.getvalue()


VALID = _valid_bytes()


def _outcome(path) -> str:
    try:
        frame = read_funding_cache(path)
    except DataError as exc:
        assert str(path) in str(exc), exc
        return "error"
    assert list(frame.columns) == ["funding_rate"] and frame.index.is_monotonic_increasing
    return "frame"


def test_the_valid_file_reads_back(tmp_path):
    path = funding_cache_path(tmp_path, "binanceusdm", "BTC/USDT:USDT")
    path.parent.mkdir(parents=True)
    path.write_bytes(VALID)
    assert _outcome(path) == "frame"
    np.testing.assert_array_equal(read_funding_cache(path).index.hour % 8, 0)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.integers(0, len(VALID) - 1), flips=st.lists(
    st.tuples(st.integers(0, len(VALID) - 1), st.integers(1, 255)), max_size=4))
def test_truncated_or_flipped_bytes(tmp_path, cut, flips):
    data = bytearray(VALID[:cut] if cut % 2 else VALID)
    for position, xor in flips:
        if position < len(data):
            data[position] ^= xor
    path = tmp_path / "BTC-USDT_USDT_funding.parquet"
    path.write_bytes(bytes(data))
    assert _outcome(path) in ("error", "frame")


def test_an_ohlcv_file_where_funding_belongs(tmp_path):
    path = tmp_path / "BTC-USDT_USDT_funding.parquet"
    synthetic_ohlcv(10, seed=1).ohlcv.to_parquet(path)
    assert _outcome(path) == "error"
    frame = pd.DataFrame({"funding_rate": [1e-4]},
                         index=pd.DatetimeIndex(["2024-01-01"], tz="UTC", name="timestamp"))
    frame.to_parquet(path)  # valid rates but no covered span: not a cache file
    assert _outcome(path) == "error"
