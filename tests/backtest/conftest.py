"""Small shared data for the backtest tests (kept small: vectorbt cost grows with bars x combos)."""

from __future__ import annotations

import pandas as pd
import pytest

from quantlib.data import load


@pytest.fixture(scope="session")
def ohlcv() -> pd.DataFrame:
    """1200 synthetic hourly bars (canonical frame)."""
    return load("sample:seed=11,bars=1200,timeframe=1h")


@pytest.fixture(scope="session")
def ohlcv_b() -> pd.DataFrame:
    """A second synthetic market on the same timestamps."""
    return load("sample:seed=5,bars=1200,timeframe=1h")
