"""Test frames: synthetic bars named as real markets, and the bad-bars refusal check."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest

from quantlib.data import load
from quantlib.errors import DataError


def sample_market(symbol: str, bars: int, seed: int, start: int = 0) -> pd.DataFrame:
    """``sample:`` hourly bars from row ``start`` on, labelled with ``symbol``.

    Parameters
    ----------
    symbol : str
        The market the frame stands for, e.g. ``"BTC/USDT"`` (``attrs["symbol"]``).
    bars, seed : int
        The synthetic source's size and seed.
    start : int, default 0
        First row kept: a later start makes this market's history begin after another's.

    Returns
    -------
    pandas.DataFrame
        A canonical OHLCV frame with ``attrs`` symbol and timeframe ``"1h"``.
    """
    df = load(f"sample:bars={bars},timeframe=1h,seed={seed}").iloc[start:]
    df.attrs.update({"symbol": symbol, "timeframe": "1h"})
    return df


def assert_bad_bars_named(func: Callable[[pd.DataFrame], object], frame: pd.DataFrame,
                          column: str, row: int) -> None:
    """``func`` refuses ``frame`` without ``column`` and with a negative close at ``row``.

    Each refusal must be a DataError naming the column (quoted) or the row.
    """
    with pytest.raises(DataError, match=f"'{column}'"):
        func(frame.drop(columns=column))
    bad = frame.copy()
    bad.iloc[row, bad.columns.get_loc("close")] = -1.0
    with pytest.raises(DataError, match=f"row {row}"):
        func(bad)
